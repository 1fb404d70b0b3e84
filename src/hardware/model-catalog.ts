// Model catalog (pure): transformer shapes, parameter counts and KV-cache bytes per token.
//
// Parameter count (`countParams`), per layer unless stated:
//   - embedding table vocab×hidden, plus an untied LM head vocab×hidden (all catalog models are untied);
//   - attention: GQA — Wq hidden×(heads·head_dim), Wk and Wv hidden×(kv_heads·head_dim) each,
//     Wo (heads·head_dim)×hidden; MLA (DeepSeek) — q_a, q_b, kv_a (to latent + rope), kv_b, o projections
//     plus their two low-rank RMSNorms;
//   - MLP: SwiGLU gate, up and down = 3·hidden·ffn (MoE layers: that per routed and shared expert with the
//     expert FFN size, plus the router hidden×experts);
//   - RMSNorm weights: 2·hidden per layer + the final hidden (and Qwen3's per-head q/k norms, 2·head_dim).
//   Not counted: biases (none of these models has them), rotary tables (not parameters), MTP heads.
//
// KV bytes per token (all layers): GQA — 2 (K and V) · kv_heads · head_dim · layers · bytes;
// MLA — the compressed latent (kv_lora_rank 512) + the shared rope key (64) per layer, · bytes.

export type Dtype = "bf16" | "fp8";
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { bf16: 2, fp8: 1 };

/** The user-facing shape (the `tandem perf --model '{...}'` JSON). */
export interface ModelShape {
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kv_heads: number;
  readonly head_dim: number;
  readonly ffn: number;
  readonly vocab: number;
}

export interface MlaSpec {
  readonly q_lora_rank: number;
  readonly kv_lora_rank: number;
  readonly qk_nope_head_dim: number;
  readonly qk_rope_head_dim: number;
  readonly v_head_dim: number;
}

export interface MoeSpec {
  readonly routed_experts: number;
  readonly active_experts: number;
  readonly shared_experts: number;
  readonly expert_ffn: number;
  /** The first `dense_layers` layers use a dense MLP of size `ffn`; the rest are MoE. */
  readonly dense_layers: number;
}

export interface ModelSpec extends ModelShape {
  readonly id: string;
  readonly name: string;
  readonly attention: "gqa" | "mla";
  readonly mla?: MlaSpec;
  readonly moe?: MoeSpec;
  /** Qwen3 normalises q and k per head. */
  readonly qk_norm?: boolean;
  readonly tied_embeddings?: boolean;
  /** Total parameters (computed by countParams). */
  readonly params: number;
  /** Parameters touched per token (= params for dense models; MoE: only the active experts). */
  readonly active_params: number;
  /** Parameters in the input embedding table (gathered, not streamed, per step). */
  readonly embedding_params: number;
  readonly kv_bytes_per_token: Readonly<Record<Dtype, number>>;
}

type ModelDef = ModelShape &
  Pick<ModelSpec, "id" | "name" | "attention"> &
  Partial<Pick<ModelSpec, "mla" | "moe" | "qk_norm" | "tied_embeddings">>;

function attentionParams(d: ModelDef): number {
  const { hidden: h, heads, kv_heads, head_dim } = d;
  if (d.attention === "mla" && d.mla) {
    const m = d.mla;
    const qHead = m.qk_nope_head_dim + m.qk_rope_head_dim;
    return (
      h * m.q_lora_rank + m.q_lora_rank + // q_a + its norm
      m.q_lora_rank * heads * qHead + // q_b
      h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank + // kv_a + its norm
      m.kv_lora_rank * heads * (m.qk_nope_head_dim + m.v_head_dim) + // kv_b
      heads * m.v_head_dim * h // o
    );
  }
  const qk = d.qk_norm ? 2 * head_dim : 0;
  return h * heads * head_dim * 2 + h * kv_heads * head_dim * 2 + qk;
}

/** Total and active parameter counts (see the header for the terms counted). */
export function countParams(d: ModelDef): { params: number; active: number; embedding: number } {
  const embedding = d.vocab * d.hidden;
  const head = d.tied_embeddings ? 0 : d.vocab * d.hidden;
  const perLayerFixed = attentionParams(d) + 2 * d.hidden;
  const swiglu = (ffn: number) => 3 * d.hidden * ffn;
  let params = embedding + head + d.hidden + d.layers * perLayerFixed;
  let active = params;
  if (d.moe) {
    const m = d.moe;
    const moeLayers = d.layers - m.dense_layers;
    const dense = m.dense_layers * swiglu(d.ffn);
    const expert = swiglu(m.expert_ffn);
    const router = d.hidden * m.routed_experts;
    params += dense + moeLayers * (router + (m.routed_experts + m.shared_experts) * expert);
    active += dense + moeLayers * (router + (m.active_experts + m.shared_experts) * expert);
  } else {
    params += d.layers * swiglu(d.ffn);
    active = params;
  }
  return { params, active, embedding };
}

export function kvBytesPerToken(d: ModelDef, dtype: Dtype): number {
  const b = DTYPE_BYTES[dtype];
  if (d.attention === "mla" && d.mla) return (d.mla.kv_lora_rank + d.mla.qk_rope_head_dim) * d.layers * b;
  return 2 * d.kv_heads * d.head_dim * d.layers * b;
}

function build(d: ModelDef): ModelSpec {
  const { params, active, embedding } = countParams(d);
  return {
    ...d,
    params,
    active_params: active,
    embedding_params: embedding,
    kv_bytes_per_token: { bf16: kvBytesPerToken(d, "bf16"), fp8: kvBytesPerToken(d, "fp8") },
  };
}

export const MODELS: readonly ModelSpec[] = [
  build({ id: "llama-3-8b", name: "Llama-3-8B", attention: "gqa", layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, ffn: 14336, vocab: 128256 }),
  build({ id: "llama-3-70b", name: "Llama-3-70B", attention: "gqa", layers: 80, hidden: 8192, heads: 64, kv_heads: 8, head_dim: 128, ffn: 28672, vocab: 128256 }),
  build({ id: "llama-3-405b", name: "Llama-3.1-405B", attention: "gqa", layers: 126, hidden: 16384, heads: 128, kv_heads: 8, head_dim: 128, ffn: 53248, vocab: 128256 }),
  build({ id: "qwen3-32b", name: "Qwen3-32B", attention: "gqa", qk_norm: true, layers: 64, hidden: 5120, heads: 64, kv_heads: 8, head_dim: 128, ffn: 25600, vocab: 151936 }),
  build({
    id: "deepseek-v3",
    name: "DeepSeek-V3 (671B MoE, MLA)",
    attention: "mla",
    layers: 61,
    hidden: 7168,
    heads: 128,
    kv_heads: 128, // MLA: every head reads the shared latent; kv_heads is not used for KV size
    head_dim: 128,
    ffn: 18432, // the 3 dense layers
    vocab: 129280,
    mla: { q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128 },
    moe: { routed_experts: 256, active_experts: 8, shared_experts: 1, expert_ffn: 2048, dense_layers: 3 },
  }),
];

export class ModelError extends Error {
  override readonly name = "ModelError";
}

export const SHAPE_FIELDS = ["layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab"] as const;

/** A dense GQA model from a user's shape (untied embeddings, SwiGLU MLP, no biases). */
export function modelFromShape(shape: ModelShape, id = "custom", name = "custom shape"): ModelSpec {
  for (const f of SHAPE_FIELDS) {
    const v = (shape as unknown as Record<string, unknown>)[f];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new ModelError(`model shape: "${f}" must be a positive integer (fields: ${SHAPE_FIELDS.join(", ")})`);
    }
  }
  if (shape.heads % shape.kv_heads !== 0) {
    throw new ModelError(`model shape: heads (${shape.heads}) must be a multiple of kv_heads (${shape.kv_heads})`);
  }
  const { layers, hidden, heads, kv_heads, head_dim, ffn, vocab } = shape;
  return build({ id, name, attention: "gqa", layers, hidden, heads, kv_heads, head_dim, ffn, vocab });
}

/** A catalog model by id; the error lists the known ids. */
export function findModel(id: string, models: readonly ModelSpec[] = MODELS): ModelSpec {
  const m = models.find((x) => x.id === id);
  if (!m) throw new ModelError(`unknown model "${id}"; known: ${models.map((x) => x.id).join(", ")}`);
  return m;
}
