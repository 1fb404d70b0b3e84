// A KV descriptor says everything needed to interpret KV bytes without the engine that wrote them: which
// model, what shape, how the bytes are laid out and in which number format. Translation, transfer and
// placement all reason about descriptors, never about engine-specific strings.
import { KvFormatError } from "./kv-format-error.ts";

export type KvDtype = "f32" | "f16" | "bf16" | "fp8_e4m3fn" | "fp8_e4m3fnuz" | "fp8_e5m2";
export type Fp8Dtype = "fp8_e4m3fn" | "fp8_e4m3fnuz" | "fp8_e5m2";

export const dtypeBytes = (dtype: KvDtype): 1 | 2 | 4 =>
  dtype === "f32" ? 4 : dtype === "f16" || dtype === "bf16" ? 2 : 1;

export const isFp8 = (dtype: KvDtype): dtype is Fp8Dtype => dtype.startsWith("fp8_");

export interface KvLayout {
  /** Inside a block: token-major (page, heads, dim) = NHD, or head-major (heads, page, dim) = HND. */
  readonly tokenOrder: "NHD" | "HND";
  /**
   * Where K and V sit relative to the blocks: "planes" puts all K blocks before all V blocks (vLLM
   * FlashAttention (2, blocks, …)); "interleaved" puts a block's K right before its V (FlashInfer
   * (blocks, 2, …)).
   */
  readonly kvPacking: "planes" | "interleaved";
  /** V blocks stored as (heads, dim, page), each element's tokens contiguous (llama.cpp without flash attention). */
  readonly vTransposed: boolean;
  /**
   * "per_layer": every layer is its own run of blocks (vLLM, SGLang); "all_layers_per_block": one block
   * holds the same tokens for every layer (TensorRT-LLM, (blocks, layers, 2, …)).
   */
  readonly layerPacking: "per_layer" | "all_layers_per_block";
}

/**
 * Dequantisation scales for fp8 KV: real = decoded code × scale. `per_tensor` has one K and one V scale per
 * layer (arrays of length `layers`, as vLLM's k_scale/v_scale); `per_head` has one per layer and KV head
 * (length `layers × kvHeads`, index `layer × kvHeads + head`). "none" on an fp8 descriptor means the scale
 * is unknown, so the codes can be moved but never turned into numbers.
 */
export type KvScales =
  | { readonly kind: "none" }
  | { readonly kind: "per_tensor"; readonly k: readonly number[]; readonly v: readonly number[] }
  | { readonly kind: "per_head"; readonly k: readonly number[]; readonly v: readonly number[] };

export const NO_SCALES: KvScales = { kind: "none" };

export interface KvDescriptor {
  /** Human name of the layout family, used in every error and plan step ("vllm-flash-attention", …). */
  readonly format: string;
  /** Identifies the model weights; KV from one model is meaningless to another. */
  readonly model: string;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Tokens whose KV the buffer holds; blocks past them are padding. */
  readonly tokens: number;
  /** Tokens per block (page). */
  readonly pageSize: number;
  readonly layout: KvLayout;
  readonly dtype: KvDtype;
  readonly scales: KvScales;
}

/** How errors and plans name a descriptor: the layout family and the number format. */
export const formatLabel = (d: KvDescriptor): string => `${d.format}/${d.dtype}`;

export const blockCount = (d: KvDescriptor): number => Math.ceil(d.tokens / d.pageSize);

/** Bytes of one K (or V) block of one layer. */
export const blockBytes = (d: KvDescriptor): number => d.pageSize * d.kvHeads * d.headDim * dtypeBytes(d.dtype);

/** Bytes of the whole native buffer: every layer, K and V, every block including padding. */
export const nativeByteLength = (d: KvDescriptor): number => d.layers * 2 * blockCount(d) * blockBytes(d);

/** Scale of `plane` (0 = K, 1 = V) for `layer` and `head`; 1 when the dtype carries no scales. */
export const scaleOf = (d: KvDescriptor, layer: number, plane: 0 | 1, head: number): number => {
  const s = d.scales;
  if (s.kind === "none") return 1;
  const values = plane === 0 ? s.k : s.v;
  return s.kind === "per_tensor" ? values[layer]! : values[layer * d.kvHeads + head]!;
};

export const sameScales = (a: KvScales, b: KvScales): boolean =>
  a.kind === b.kind &&
  (a.kind === "none" ||
    (b.kind !== "none" && a.k.length === b.k.length && a.k.every((x, i) => x === b.k[i]) && a.v.every((x, i) => x === b.v[i])));

/** The scales with every value multiplied by `factor` (e4m3fn ↔ e4m3fnuz reinterpretation uses ×2 and ×½). */
export const scaledScales = (s: KvScales, factor: number): KvScales =>
  s.kind === "none" ? s : { kind: s.kind, k: s.k.map((x) => x * factor), v: s.v.map((x) => x * factor) };

/** Why the descriptor cannot describe any buffer, or undefined when it is well formed. */
export const descriptorProblem = (d: KvDescriptor): string | undefined => {
  const positive = { layers: d.layers, kvHeads: d.kvHeads, headDim: d.headDim, pageSize: d.pageSize };
  for (const [name, value] of Object.entries(positive)) {
    if (!Number.isInteger(value) || value < 1) return `${name} must be a positive integer, got ${value}`;
  }
  if (!Number.isInteger(d.tokens) || d.tokens < 0) return `tokens must be a non-negative integer, got ${d.tokens}`;
  const s = d.scales;
  if (s.kind === "none") return undefined;
  if (!isFp8(d.dtype)) return `scales are only meaningful for fp8, not ${d.dtype}`;
  const expected = s.kind === "per_tensor" ? d.layers : d.layers * d.kvHeads;
  if (s.k.length !== expected || s.v.length !== expected) {
    return `${s.kind} scales need ${expected} K and V values, got ${s.k.length} and ${s.v.length}`;
  }
  const bad = [...s.k, ...s.v].find((x) => !(Number.isFinite(x) && x > 0));
  return bad === undefined ? undefined : `scales must be finite and positive, got ${bad}`;
};

/** Throws a KvFormatError naming `from` and `to` when `d` is malformed. */
export const assertDescriptor = (d: KvDescriptor, from: string, to: string): void => {
  const problem = descriptorProblem(d);
  if (problem !== undefined) throw new KvFormatError(from, to, problem);
};

/** Why KV of `a` can never be KV of `b` (different model or shape), or undefined when the shapes agree. */
export const shapeMismatch = (a: KvDescriptor, b: KvDescriptor): string | undefined => {
  if (a.model !== b.model) return `model fingerprint ${a.model} ≠ ${b.model}`;
  const fields = ["layers", "kvHeads", "headDim", "tokens"] as const;
  const field = fields.find((f) => a[f] !== b[f]);
  return field === undefined ? undefined : `${field} ${a[field]} ≠ ${b[field]}`;
};
