// Performance model (pure): prefill time, decode step time and memory capacity of a model on an accelerator.
//
// PREFILL  t = overhead + dense / (ceil · eff(m)) + attention / (ceil · a) + tensor-parallel all-reduce
//   dense     = 2 · (active params − input embedding table) · tokens · batch / tp
//               (every matmul, the LM head included for every token — what the calibration forward does)
//   attention = layers · heads · (qk_dim + v_dim) · tokens² · batch / tp   (causal: half of the 2·T²·d
//               QKᵀ and PV FLOPs each; GQA qk=v=head_dim; MLA prefill qk = nope+rope = 192, v = 128)
//   ceil      = spec peak (bf16, or fp8 where the chip has it) × the catalog's measured matmul efficiency
//               (`mamf_*_efficiency`; where absent, DEFAULT_CONSTANTS.defaultMatmulEfficiency)
//   eff(m)    = s · m / (m^p + knee^p)^(1/p), m = tokens · batch, the M dimension of every weight matmul:
//               a saturating curve, ≈ s·m/knee for small m and → s for large m; s is the fraction of the
//               MAMF ceiling a whole forward sustains (norms, rope, SwiGLU and residual adds cost time too)
//   a         = flash-attention efficiency relative to the matmul ceiling (a constant)
//
// DECODE STEP  t = overhead + (mem^n + comp^n)^(1/n) + tensor-parallel all-reduce
//   mem   = (weights streamed once + KV of every sequence) / (hbm_tbps · bwEff) per chip
//           weights streamed = all params but the input embedding (gathered, not streamed); MoE: shared
//           weights + the expected routed experts touched by `batch` tokens, E·(1 − (1 − k/E)^batch)
//   comp  = (2 · active matmul params · batch + 2 · layers · heads · (qk+v) · context · batch) / tp / ceil
//           (MLA decode runs absorbed: qk = 512 + 64, v = 512)
//   n     = overlap exponent: a soft maximum, so compute is a floor (n → ∞ is a hard max, n = 1 a sum)
//
// TENSOR PARALLEL over tp chips: FLOPs, weights and (GQA) KV heads split tp ways (KV heads replicate once
// tp > kv_heads; the MLA latent is replicated on every rank); 2 all-reduces per layer of
// tokens · batch · hidden · 2 bytes, ring cost 2(tp−1)/tp · size / scaleup_gbps_uni + a fixed latency.
// Chips without a scale-up figure use DEFAULT_CONSTANTS.fallbackLinkGbps (PCIe 5 x16).
//
// MEMORY  weights (all params × weight bytes / tp) + batch · context · KV bytes per token per chip ≤
// hbm_gb · 10⁹ · usableMemoryFraction (the rest: activations, CUDA graphs, fragmentation).
//
// BF16 vs FP8: fp8 halves weight and (by default) KV bytes and uses the fp8 peak × mamf_fp8 where the chip
// has them (falls back to the bf16 peak/efficiency otherwise: fp8 storage, bf16 compute).
//
// CALIBRATION (H200 SXM, Llama-3-8B shapes, `../shared/data/calibration/h200-llama3-8b.json`; H200 catalog
// ceiling 989 TFLOP/s bf16 × mamf 0.803 = 794 TFLOP/s, HBM 4.8 TB/s):
//   The free constants were fitted by grid search minimising the WORST relative error over the file's points:
//   prefill on its 4 points (batch 1, tokens 256..16384), decode on its 7 points (`step_s`, the CUDA-graph
//   step — what a serving engine runs; `step_s_eager` adds Python launch time a real engine does not pay),
//   batch 1..256, context 1024..8192. Constants are chip-independent; a chip enters only through its
//   catalog peak, MAMF and bandwidth, so other chips get the same curve shape.
//     forwardEfficiency   s    = 0.81    large-matmul forward at 0.81 × 794 = 643 TFLOP/s (the device's own
//                                         measured matmul ceiling is 753: 0.95 × MAMF)
//     matmulKnee          knee = 180 tokens, matmulKneeSharpness p = 1.5  (eff(256) = 0.72·s, eff(1024) = 0.95·s)
//     attentionEfficiency a    = 0.70    flash attention at 556 TFLOP/s (separated by the 4096 vs 16384 points)
//     prefillOverheadS         = 0.2 ms
//     bandwidthEfficiency      = 0.88    4.22 TB/s of 4.8, bounded above by the measured HBM copy (4.21 TB/s);
//                                         unbounded the fit picks 0.94 with 1.8 ms overhead and a 2.3% worst error
//     decodeOverheadS          = 1.5 ms  per step
//     overlapExponent     n    = 2       (memory and compute time add in quadrature)
//   Resulting worst errors: prefill 0.4% (5 constants on 4 points: the prefill fit is exact by construction,
//   the shape of the curve is the claim), decode 4.7% (b64×c8192 over-predicted; b8×c1024 and b256×c2048
//   under-predicted by 3.8% and 3.7%). test/unit/hardware-calibration.test.ts checks every point within 10%.
import type { Accelerator } from "./accelerator-catalog.ts";
import { DTYPE_BYTES, type Dtype, type ModelSpec } from "./model-catalog.ts";

export interface PerfConstants {
  /** Fraction of the MAMF ceiling a whole forward sustains on large matmuls (norms, activations, rope...). */
  readonly forwardEfficiency: number;
  readonly matmulKnee: number;
  readonly matmulKneeSharpness: number;
  readonly attentionEfficiency: number;
  readonly prefillOverheadS: number;
  readonly bandwidthEfficiency: number;
  readonly decodeOverheadS: number;
  readonly overlapExponent: number;
  /** Matmul efficiency for chips with no published MAMF (mean of the catalog's published bf16 values). */
  readonly defaultMatmulEfficiency: number;
  readonly usableMemoryFraction: number;
  readonly allReduceLatencyS: number;
  readonly fallbackLinkGbps: number;
}

export const DEFAULT_CONSTANTS: PerfConstants = {
  forwardEfficiency: 0.81,
  matmulKnee: 180,
  matmulKneeSharpness: 1.5,
  attentionEfficiency: 0.7,
  prefillOverheadS: 0.0002,
  bandwidthEfficiency: 0.88,
  decodeOverheadS: 0.0015,
  overlapExponent: 2,
  defaultMatmulEfficiency: 0.7,
  usableMemoryFraction: 0.9,
  allReduceLatencyS: 10e-6,
  fallbackLinkGbps: 64,
};

export interface PerfOptions {
  readonly batch?: number;
  readonly tp?: number;
  /** Weight (and compute) dtype. */
  readonly dtype?: Dtype;
  /** KV-cache dtype; defaults to `dtype`. */
  readonly kvDtype?: Dtype;
  readonly constants?: Partial<PerfConstants>;
}

interface Resolved {
  batch: number;
  tp: number;
  dtype: Dtype;
  kvDtype: Dtype;
  k: PerfConstants;
}

function resolve(opts: PerfOptions = {}): Resolved {
  const batch = opts.batch ?? 1;
  const tp = opts.tp ?? 1;
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(tp) || tp < 1) throw new RangeError(`tp must be a positive integer, got ${tp}`);
  const dtype = opts.dtype ?? "bf16";
  return { batch, tp, dtype, kvDtype: opts.kvDtype ?? dtype, k: { ...DEFAULT_CONSTANTS, ...opts.constants } };
}

/** Matmul ceiling in FLOP/s: spec peak × measured matmul efficiency for the dtype. */
export function matmulCeilingFlops(chip: Accelerator, dtype: Dtype, k: PerfConstants = DEFAULT_CONSTANTS): number {
  if (dtype === "fp8" && chip.fp8_tflops !== null) {
    const eff = chip.mamf_fp8_efficiency ?? chip.mamf_bf16_efficiency ?? k.defaultMatmulEfficiency;
    return chip.fp8_tflops * 1e12 * eff;
  }
  return chip.bf16_tflops * 1e12 * (chip.mamf_bf16_efficiency ?? k.defaultMatmulEfficiency);
}

/** Matmul efficiency (fraction of the MAMF ceiling) for a matmul with M = m rows. */
export function matmulEfficiency(m: number, k: PerfConstants = DEFAULT_CONSTANTS): number {
  const p = k.matmulKneeSharpness;
  return (k.forwardEfficiency * m) / (m ** p + k.matmulKnee ** p) ** (1 / p);
}

const matmulParams = (model: ModelSpec) => model.active_params - model.embedding_params;

function attentionDims(model: ModelSpec, phase: "prefill" | "decode"): { qk: number; v: number } {
  if (model.attention === "mla" && model.mla) {
    const m = model.mla;
    return phase === "prefill"
      ? { qk: m.qk_nope_head_dim + m.qk_rope_head_dim, v: m.v_head_dim }
      : { qk: m.kv_lora_rank + m.qk_rope_head_dim, v: m.kv_lora_rank };
  }
  return { qk: model.head_dim, v: model.head_dim };
}

/** Seconds for the tensor-parallel all-reduces of one forward over `rows` token rows. */
export function allReduceSeconds(chip: Accelerator, model: ModelSpec, rows: number, tp: number, k: PerfConstants = DEFAULT_CONSTANTS): number {
  if (tp <= 1) return 0;
  const bytes = rows * model.hidden * 2; // bf16 activations
  const linkBytesPerS = (chip.scaleup_gbps_uni ?? k.fallbackLinkGbps) * 1e9;
  const one = ((2 * (tp - 1)) / tp) * (bytes / linkBytesPerS) + k.allReduceLatencyS;
  return 2 * model.layers * one;
}

export interface PrefillBreakdown {
  readonly seconds: number;
  readonly denseFlops: number;
  readonly attentionFlops: number;
  readonly matmulEfficiency: number;
  readonly commSeconds: number;
}

export function prefillBreakdown(chip: Accelerator, model: ModelSpec, tokens: number, opts: PerfOptions = {}): PrefillBreakdown {
  const { batch, tp, dtype, k } = resolve(opts);
  if (!Number.isInteger(tokens) || tokens < 1) throw new RangeError(`tokens must be a positive integer, got ${tokens}`);
  const rows = tokens * batch;
  const denseFlops = (2 * matmulParams(model) * rows) / tp;
  const { qk, v } = attentionDims(model, "prefill");
  const attentionFlops = (model.layers * model.heads * (qk + v) * tokens * tokens * batch) / tp;
  const ceil = matmulCeilingFlops(chip, dtype, k);
  const eff = matmulEfficiency(rows, k);
  const commSeconds = allReduceSeconds(chip, model, rows, tp, k);
  const seconds = k.prefillOverheadS + denseFlops / (ceil * eff) + attentionFlops / (ceil * k.attentionEfficiency) + commSeconds;
  return { seconds, denseFlops, attentionFlops, matmulEfficiency: eff, commSeconds };
}

/** Seconds to prefill `batch` prompts of `tokens` tokens each in one forward. */
export function prefillSeconds(chip: Accelerator, model: ModelSpec, tokens: number, opts: PerfOptions = {}): number {
  return prefillBreakdown(chip, model, tokens, opts).seconds;
}

/** Weight bytes streamed per decode step per chip (MoE: expected experts touched by `batch` tokens). */
export function weightBytesStreamed(model: ModelSpec, batch: number, dtype: Dtype, tp = 1): number {
  let params = model.params - model.embedding_params;
  if (model.moe) {
    const m = model.moe;
    const moeLayers = model.layers - m.dense_layers;
    const expert = 3 * model.hidden * m.expert_ffn;
    const touched = m.routed_experts * (1 - (1 - m.active_experts / m.routed_experts) ** batch);
    params -= moeLayers * (m.routed_experts - touched) * expert;
  }
  return (params * DTYPE_BYTES[dtype]) / tp;
}

/** KV bytes per token held by one of `tp` chips (GQA heads split, replicated past kv_heads; MLA replicated). */
export function kvBytesPerTokenPerChip(model: ModelSpec, kvDtype: Dtype, tp = 1): number {
  const total = model.kv_bytes_per_token[kvDtype];
  if (model.attention === "mla") return total;
  return (total * Math.ceil(model.kv_heads / tp)) / model.kv_heads;
}

export interface DecodeBreakdown {
  readonly seconds: number;
  readonly weightBytes: number;
  readonly kvBytes: number;
  readonly flops: number;
  readonly memorySeconds: number;
  readonly computeSeconds: number;
  readonly commSeconds: number;
}

export function decodeBreakdown(chip: Accelerator, model: ModelSpec, batch: number, context: number, opts: PerfOptions = {}): DecodeBreakdown {
  const { tp, dtype, kvDtype, k } = resolve({ ...opts, batch });
  if (!Number.isInteger(context) || context < 0) throw new RangeError(`context must be a non-negative integer, got ${context}`);
  const weightBytes = weightBytesStreamed(model, batch, dtype, tp);
  const kvBytes = batch * context * kvBytesPerTokenPerChip(model, kvDtype, tp);
  const memorySeconds = (weightBytes + kvBytes) / (chip.hbm_tbps * 1e12 * k.bandwidthEfficiency);
  const { qk, v } = attentionDims(model, "decode");
  const flops = (2 * matmulParams(model) * batch + 2 * model.layers * model.heads * (qk + v) * context * batch) / tp;
  const computeSeconds = flops / matmulCeilingFlops(chip, dtype, k);
  const n = k.overlapExponent;
  const commSeconds = allReduceSeconds(chip, model, batch, tp, k);
  const seconds = k.decodeOverheadS + (memorySeconds ** n + computeSeconds ** n) ** (1 / n) + commSeconds;
  return { seconds, weightBytes, kvBytes, flops, memorySeconds, computeSeconds, commSeconds };
}

/** Seconds for one decode step of `batch` sequences each holding `context` tokens of KV. */
export function decodeStepSeconds(chip: Accelerator, model: ModelSpec, batch: number, context: number, opts: Omit<PerfOptions, "batch"> = {}): number {
  return decodeBreakdown(chip, model, batch, context, opts).seconds;
}

export interface MemoryFit {
  readonly fits: boolean;
  readonly weightBytesPerChip: number;
  readonly kvBytesPerChip: number;
  readonly usableBytesPerChip: number;
  /** Largest batch at this context that fits (0 if not even the weights fit). */
  readonly maxBatch: number;
}

/** Does weights + batch·context KV fit in each chip's usable HBM? Also the max batch at `context`. */
export function memoryFit(chip: Accelerator, model: ModelSpec, batch: number, context: number, opts: Omit<PerfOptions, "batch"> = {}): MemoryFit {
  const { tp, dtype, kvDtype, k } = resolve(opts);
  const usableBytesPerChip = chip.hbm_gb * 1e9 * k.usableMemoryFraction;
  const weightBytesPerChip = (model.params * DTYPE_BYTES[dtype]) / tp;
  const perSeq = context * kvBytesPerTokenPerChip(model, kvDtype, tp);
  const kvBytesPerChip = batch * perSeq;
  const free = usableBytesPerChip - weightBytesPerChip;
  const maxBatch = free <= 0 ? 0 : perSeq === 0 ? Number.POSITIVE_INFINITY : Math.floor(free / perSeq);
  return { fits: weightBytesPerChip + kvBytesPerChip <= usableBytesPerChip, weightBytesPerChip, kvBytesPerChip, usableBytesPerChip, maxBatch };
}

export function maxBatch(chip: Accelerator, model: ModelSpec, context: number, opts: Omit<PerfOptions, "batch"> = {}): number {
  return memoryFit(chip, model, 1, context, opts).maxBatch;
}
