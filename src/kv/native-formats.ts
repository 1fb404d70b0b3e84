// The KV layouts of the serving stacks Tandem pairs, as descriptors: each preset is the only place that
// knows a vendor's shape, so adding a stack is adding a preset, never touching the codecs.
import { type KvDescriptor, type KvDtype, type KvLayout, type KvScales, NO_SCALES } from "./descriptor.ts";

/** What a preset needs to know about the KV it describes; dtype and scales default per stack. */
export interface KvShape {
  readonly model: string;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly tokens: number;
  readonly dtype?: KvDtype;
  readonly scales?: KvScales;
  /** Overrides the stack's default block size (e.g. vLLM --block-size 32). */
  readonly pageSize?: number;
}

const layout = (
  tokenOrder: KvLayout["tokenOrder"],
  kvPacking: KvLayout["kvPacking"],
  layerPacking: KvLayout["layerPacking"] = "per_layer",
): KvLayout => ({ tokenOrder, kvPacking, vTransposed: false, layerPacking });

const preset =
  (format: string, pageSize: number, kvLayout: KvLayout, dtype: KvDtype) =>
  (shape: KvShape): KvDescriptor => ({
    format,
    model: shape.model,
    layers: shape.layers,
    kvHeads: shape.kvHeads,
    headDim: shape.headDim,
    tokens: shape.tokens,
    pageSize: shape.pageSize ?? pageSize,
    layout: kvLayout,
    dtype: shape.dtype ?? dtype,
    scales: shape.scales ?? NO_SCALES,
  });

export const nativeFormats = {
  /** vLLM FlashAttention backend: per layer (2, blocks, 16, kv_heads, head_dim). */
  vllmFlashAttention: preset("vllm-flash-attention", 16, layout("NHD", "planes"), "bf16"),
  /** vLLM FlashInfer backend: per layer (blocks, 2, 16, kv_heads, head_dim). */
  vllmFlashInfer: preset("vllm-flashinfer", 16, layout("NHD", "interleaved"), "bf16"),
  /** vLLM on ROCm MI300/MI325: the FlashAttention layout with fp8 e4m3fnuz (pass the k/v scales). */
  rocm: preset("rocm-flash-attention", 16, layout("NHD", "planes"), "fp8_e4m3fnuz"),
  /** vLLM-Gaudi: K and V as separate token-major caches in 128-token blocks. */
  vllmGaudi: preset("vllm-gaudi", 128, layout("NHD", "planes"), "bf16"),
  /** SGLang token-to-KV pool: per layer K and V buffers of (tokens, heads, dim), page size 1. */
  sglang: preset("sglang", 1, layout("NHD", "planes"), "bf16"),
  /** TensorRT-LLM: a block holds every layer, (blocks, layers, 2, kv_heads, 32, head_dim). */
  tensorrtLlm: preset("tensorrt-llm", 32, layout("HND", "interleaved", "all_layers_per_block"), "bf16"),
} as const;

export type NativeFormatName = keyof typeof nativeFormats;
