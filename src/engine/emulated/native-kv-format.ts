// Names of the vendor-native KV formats emulated engines put on the wire, e.g.
// `vllm-flash-attention/f16/stories260K/kv_heads=4`: the layout family (a preset of src/kv/native-formats.ts,
// or `canonical`), the element dtype, the model whose KV it is and its KV head count. The name is what
// engines advertise as `kvFormat`; with the layer count, head size and token count an envelope carries,
// it gives the full KV descriptor.
import { canonicalDescriptor, CANONICAL_FORMAT } from "../../kv/canonical.ts";
import type { KvDescriptor, KvDtype, KvScales } from "../../kv/descriptor.ts";
import { type KvShape, nativeFormats } from "../../kv/native-formats.ts";

export interface NativeKvFormat {
  /** Layout family, e.g. `vllm-flash-attention`, `vllm-gaudi`, `rocm-flash-attention`, `canonical`. */
  readonly family: string;
  readonly dtype: KvDtype;
  readonly model: string;
  readonly kvHeads: number;
}

const KV_DTYPES: ReadonlyArray<KvDtype> = ["f32", "f16", "bf16", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2"];

export const isKvDtype = (s: string): s is KvDtype => (KV_DTYPES as ReadonlyArray<string>).includes(s);

const PROBE: KvShape = { model: "probe", layers: 1, kvHeads: 1, headDim: 1, tokens: 0 };

/** Every layout family a native name may use, with the descriptor it builds. */
const FAMILIES: ReadonlyMap<string, (shape: KvShape) => KvDescriptor> = new Map([
  ...Object.values(nativeFormats).map((preset) => [preset(PROBE).format, preset] as const),
  [CANONICAL_FORMAT, (shape: KvShape) => canonicalDescriptor(nativeFormats.sglang(shape))],
]);

export const nativeFamilies = (): ReadonlyArray<string> => [...FAMILIES.keys()];

export const nativeFormatName = (f: NativeKvFormat): string => `${f.family}/${f.dtype}/${f.model}/kv_heads=${f.kvHeads}`;

export const parseNativeFormatName = (name: string): NativeKvFormat | undefined => {
  const match = /^([a-z0-9-]+)\/([a-z0-9_]+)\/(.+)\/kv_heads=(\d+)$/.exec(name);
  if (match === null || !FAMILIES.has(match[1]!) || !isKvDtype(match[2]!) || Number(match[4]) < 1) return undefined;
  return { family: match[1]!, dtype: match[2], model: match[3]!, kvHeads: Number(match[4]) };
};

/** What a native name leaves to the buffer: how many layers and tokens, the head size and fp8 scales. */
export interface NativeKvExtent {
  readonly layers: number;
  readonly headDim: number;
  readonly tokens: number;
  readonly scales: KvScales;
}

/** The descriptor of KV in format `f` with this extent (the family's own block size). */
export const nativeDescriptor = (f: NativeKvFormat, extent: NativeKvExtent): KvDescriptor =>
  FAMILIES.get(f.family)!({
    model: f.model,
    layers: extent.layers,
    kvHeads: f.kvHeads,
    headDim: extent.headDim,
    tokens: extent.tokens,
    dtype: f.dtype,
    scales: extent.scales,
  });
