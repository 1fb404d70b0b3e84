// Codecs between any native layout a descriptor can express and the canonical wire form. They work one
// layer at a time so a sender can emit layer i while layer i+1 is still being produced, and a receiver can
// place layer i while layer i+1 is in flight. Only layout changes here; dtype conversion is a separate step.
import {
  CANONICAL_PAGE,
  type CanonicalKv,
  canonicalDescriptor,
  canonicalLayerBytes,
} from "./canonical.ts";
import {
  assertDescriptor,
  blockBytes,
  blockCount,
  dtypeBytes,
  formatLabel,
  type KvDescriptor,
  nativeByteLength,
  sameScales,
  shapeMismatch,
} from "./descriptor.ts";
import { copyStrided } from "./kernels/copy-run.ts";
import type { KernelShape } from "./kernels/kernel-shape.ts";
import { hndToNhd, nhdToHnd, transposeV, untransposeV } from "./kernels/permute.ts";
import { repage } from "./kernels/repage.ts";
import { KvFormatError } from "./kv-format-error.ts";

type Plane = 0 | 1;

/** Block b of (layer, plane) starts at `offset + b × stride` in the native buffer. */
const planeLocation = (d: KvDescriptor, layer: number, plane: Plane): { offset: number; stride: number } => {
  const B = blockBytes(d);
  const blocks = blockCount(d);
  const L = d.layers;
  if (d.layout.layerPacking === "per_layer") {
    return d.layout.kvPacking === "planes"
      ? { offset: (layer * 2 + plane) * blocks * B, stride: B }
      : { offset: layer * 2 * blocks * B + plane * B, stride: 2 * B };
  }
  return d.layout.kvPacking === "interleaved"
    ? { offset: (layer * 2 + plane) * B, stride: 2 * L * B }
    : { offset: (plane * L + layer) * B, stride: 2 * L * B };
};

interface Stage {
  readonly bytes: number;
  readonly apply: (src: Uint8Array, dst: Uint8Array) => void;
}

/** Runs the stages, each into a fresh buffer except the last, which writes into `out`. */
const runStages = (input: Uint8Array, stages: readonly Stage[], out: Uint8Array): void => {
  let cur = input;
  stages.forEach((stage, i) => {
    const dst = i === stages.length - 1 ? out : new Uint8Array(stage.bytes);
    stage.apply(cur, dst);
    cur = dst;
  });
};

const geometry = (d: KvDescriptor) => {
  const elemBytes = dtypeBytes(d.dtype);
  const common = { heads: d.kvHeads, headDim: d.headDim, elemBytes, tokens: d.tokens } as const;
  const atPage = (page: number): KernelShape => ({ ...common, page, blocks: Math.ceil(d.tokens / page) });
  const repaging = (order: "NHD" | "HND", fromPage: number, toPage: number) => ({ ...common, order, fromPage, toPage });
  const pagedBytes = (page: number) => Math.ceil(d.tokens / page) * page * d.kvHeads * d.headDim * elemBytes;
  return { atPage, repaging, pagedBytes };
};

/** Whether this plane is stored transposed, (heads, dim, page) per block; only V ever is. */
const isTransposed = (d: KvDescriptor, plane: Plane) => plane === 1 && d.layout.vTransposed;

const toCanonicalStages = (d: KvDescriptor, plane: Plane): Stage[] => {
  const g = geometry(d);
  const P = d.pageSize;
  const stages: Stage[] = [];
  let order = d.layout.tokenOrder;
  if (isTransposed(d, plane)) {
    stages.push({ bytes: g.pagedBytes(P), apply: (s, o) => untransposeV(s, o, g.atPage(P)) });
    order = "HND";
  }
  if (P !== CANONICAL_PAGE || (order === "HND" && stages.length === 0)) {
    // Also the plain case (HND, 16-token pages): a copy that reads only valid tokens and zeroes the padding.
    const shape = g.repaging(order, P, CANONICAL_PAGE);
    stages.push({ bytes: g.pagedBytes(CANONICAL_PAGE), apply: (s, o) => repage(s, o, shape) });
  }
  if (order === "NHD") {
    stages.push({ bytes: g.pagedBytes(CANONICAL_PAGE), apply: (s, o) => nhdToHnd(s, o, g.atPage(CANONICAL_PAGE)) });
  }
  return stages;
};

const fromCanonicalStages = (d: KvDescriptor, plane: Plane): Stage[] => {
  const g = geometry(d);
  const P = d.pageSize;
  const order = isTransposed(d, plane) ? "HND" : d.layout.tokenOrder;
  const stages: Stage[] = [];
  if (order === "NHD") {
    stages.push({ bytes: g.pagedBytes(CANONICAL_PAGE), apply: (s, o) => hndToNhd(s, o, g.atPage(CANONICAL_PAGE)) });
  }
  const repageTo = (page: number) => {
    const shape = g.repaging(order, CANONICAL_PAGE, page);
    stages.push({ bytes: g.pagedBytes(page), apply: (s, o) => repage(s, o, shape) });
  };
  if (P !== CANONICAL_PAGE) repageTo(P);
  if (isTransposed(d, plane)) stages.push({ bytes: g.pagedBytes(P), apply: (s, o) => transposeV(s, o, g.atPage(P)) });
  // Nothing to permute: still copy valid tokens only, so padding is zero whatever the canonical bytes hold.
  if (stages.length === 0) repageTo(CANONICAL_PAGE);
  return stages;
};

const checkNative = (d: KvDescriptor, native: Uint8Array, layer: number, from: string, to: string): void => {
  assertDescriptor(d, from, to);
  if (native.length !== nativeByteLength(d)) {
    throw new KvFormatError(from, to, `buffer holds ${native.length} bytes, the descriptor needs ${nativeByteLength(d)}`);
  }
  if (!Number.isInteger(layer) || layer < 0 || layer >= d.layers) {
    throw new KvFormatError(from, to, `layer ${layer} is outside 0..${d.layers - 1}`);
  }
};

/** Layer `layer` of a native buffer as one canonical layer buffer (K plane, then V plane). */
export const layerToCanonical = (d: KvDescriptor, native: Uint8Array, layer: number): Uint8Array => {
  checkNative(d, native, layer, formatLabel(d), formatLabel(canonicalDescriptor(d)));
  const out = new Uint8Array(canonicalLayerBytes(d));
  const planeBytes = out.length / 2;
  const B = blockBytes(d);
  const blocks = blockCount(d);
  for (const plane of [0, 1] as const) {
    const { offset, stride } = planeLocation(d, layer, plane);
    let blocksOfPlane: Uint8Array;
    if (stride === B) blocksOfPlane = native.subarray(offset, offset + blocks * B);
    else {
      blocksOfPlane = new Uint8Array(blocks * B);
      copyStrided(native, offset, stride, blocksOfPlane, 0, B, blocks, B);
    }
    runStages(blocksOfPlane, toCanonicalStages(d, plane), out.subarray(plane * planeBytes, (plane + 1) * planeBytes));
  }
  return out;
};

/** Writes one canonical layer (same dtype and scales as `d`) into its place in the native buffer `native`. */
export const layerFromCanonical = (canonicalLayer: Uint8Array, d: KvDescriptor, layer: number, native: Uint8Array): void => {
  const from = formatLabel(canonicalDescriptor(d));
  checkNative(d, native, layer, from, formatLabel(d));
  if (canonicalLayer.length !== canonicalLayerBytes(d)) {
    throw new KvFormatError(from, formatLabel(d), `canonical layer holds ${canonicalLayer.length} bytes, expected ${canonicalLayerBytes(d)}`);
  }
  const planeBytes = canonicalLayer.length / 2;
  const B = blockBytes(d);
  const blocks = blockCount(d);
  for (const plane of [0, 1] as const) {
    const { offset, stride } = planeLocation(d, layer, plane);
    const stages = fromCanonicalStages(d, plane);
    const src = canonicalLayer.subarray(plane * planeBytes, (plane + 1) * planeBytes);
    if (stride === B) runStages(src, stages, native.subarray(offset, offset + blocks * B));
    else {
      const blocksOfPlane = new Uint8Array(blocks * B);
      runStages(src, stages, blocksOfPlane);
      copyStrided(blocksOfPlane, 0, B, native, offset, stride, blocks, B);
    }
  }
};

export const toCanonical = (d: KvDescriptor, native: Uint8Array): CanonicalKv => ({
  descriptor: canonicalDescriptor(d),
  layers: Array.from({ length: d.layers }, (_, layer) => layerToCanonical(d, native, layer)),
});

/** The native buffer for `d` holding `canonical`, which must already be in `d`'s dtype and scales. */
export const fromCanonical = (canonical: CanonicalKv, d: KvDescriptor): Uint8Array => {
  const c = canonical.descriptor;
  const mismatch =
    shapeMismatch(c, d) ??
    (c.dtype !== d.dtype ? `dtype ${c.dtype} ≠ ${d.dtype} (plan a translation to convert)` : undefined) ??
    (sameScales(c.scales, d.scales) ? undefined : "fp8 scales differ (plan a translation to re-quantise)") ??
    (canonical.layers.length !== d.layers ? `${canonical.layers.length} canonical layers for ${d.layers}` : undefined);
  if (mismatch !== undefined) throw new KvFormatError(formatLabel(c), formatLabel(d), mismatch);
  const native = new Uint8Array(nativeByteLength(d));
  canonical.layers.forEach((layer, i) => layerFromCanonical(layer, d, i, native));
  return native;
};
