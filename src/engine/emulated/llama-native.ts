// llama.cpp sequence state ⇄ a vendor-native KV envelope, through the KV planner: the state is parsed
// into per-layer K and V (src/kv/llama-state.ts), described as a native layout of its own, and translated
// through canonical into the target layout (src/kv/planner.ts); the way back rebuilds the state for the
// importing context (its own stream count and V layout).
//
// llama.cpp's KV with flash attention on is, per layer, K then V, each (cells, kv_heads, head_dim) —
// exactly SGLang's token-to-KV pool layout (page size 1) — so it is described with that preset under the
// name `llama.cpp-seq-state`. Transposed V (flash attention off) is untransposed first; that is exact.
import { dtypeBytes, type KvDescriptor, type KvDtype } from "../../kv/descriptor.ts";
import { KvFormatError } from "../../kv/kv-format-error.ts";
import {
  GGML_TYPE,
  ggmlTypeName,
  LLAMA_STATE_SEQ_MAGIC,
  type LlamaLayerState,
  llamaSeqState,
  type LlamaStreamState,
  parseLlamaSeqState,
  setVTransposed,
  writeLlamaSeqState,
} from "../../kv/llama-state.ts";
import { nativeFormats } from "../../kv/native-formats.ts";
import { planTranslation, translate } from "../../kv/planner.ts";
import { encodeEnvelope, type KvEnvelope } from "./kv-envelope.ts";
import { nativeDescriptor, type NativeKvFormat, nativeFormatName } from "./native-kv-format.ts";
import { wireScales } from "./wire-scales.ts";

const LLAMA_FAMILY = "llama.cpp-seq-state";

const DTYPE_OF_GGML: Readonly<Record<number, KvDtype>> = { [GGML_TYPE.F32]: "f32", [GGML_TYPE.F16]: "f16", [GGML_TYPE.BF16]: "bf16" };

/** A llama.cpp state's KV (flash-attention layout) as a descriptor. */
const llamaDescriptor = (shape: Pick<KvDescriptor, "model" | "layers" | "kvHeads" | "headDim" | "tokens">, dtype: KvDtype): KvDescriptor => ({
  ...nativeFormats.sglang({ model: shape.model, layers: shape.layers, kvHeads: shape.kvHeads, headDim: shape.headDim, tokens: shape.tokens, dtype }),
  format: LLAMA_FAMILY,
});

/** The KV dtype both K and V of a llama.cpp cache are stored in; other caches are refused. */
const cacheDtype = (kType: number, vType: number, refuse: (reason: string) => KvFormatError): KvDtype => {
  const dtype = DTYPE_OF_GGML[kType];
  if (kType !== vType || dtype === undefined) {
    throw refuse(`a llama.cpp cache of K ${ggmlTypeName(kType)} and V ${ggmlTypeName(vType)} (only f32, f16 or bf16 for both)`);
  }
  return dtype;
};

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** A llama.cpp sequence state as an envelope of KV in `target`'s layout and dtype. */
export const llamaToNative = (stateBytes: Uint8Array, target: NativeKvFormat): Uint8Array => {
  const refuse = (reason: string) => new KvFormatError(LLAMA_FAMILY, nativeFormatName(target), reason);
  let state;
  try {
    state = setVTransposed(parseLlamaSeqState(stateBytes), false);
  } catch (error) {
    throw refuse(errorMessage(error));
  }
  if (state.cellExt) throw refuse("cells with ext records (M-RoPE / PLE models) have no native form");
  const occupied = state.caches.flatMap((c) => c.streams.filter((s) => s.cells.length > 0));
  if (occupied.length !== 1) throw refuse(`the state's cells sit in ${occupied.length} streams or caches, not one`);
  const stream = occupied[0]!;
  const { k, v } = stream.layers[0]!;
  const dtype = cacheDtype(k.ggmlType, v.ggmlType, refuse);
  const embd = k.rowBytes / dtypeBytes(dtype);
  const headDim = embd / target.kvHeads;
  if (!Number.isInteger(headDim)) throw refuse(`${embd} elements per token do not split into ${target.kvHeads} KV heads`);
  const tokens = stream.cells.length;
  const source = llamaDescriptor({ model: target.model, layers: stream.layers.length, kvHeads: target.kvHeads, headDim, tokens }, dtype);
  const planeBytes = tokens * k.rowBytes;
  const buffer = new Uint8Array(stream.layers.length * 2 * planeBytes);
  stream.layers.forEach((layer, l) => {
    if (layer.k.ggmlType !== k.ggmlType || layer.v.ggmlType !== v.ggmlType || layer.k.rowBytes !== k.rowBytes || layer.v.rowBytes !== k.rowBytes) {
      throw refuse(`layer ${l} is stored differently from layer 0`);
    }
    buffer.set(layer.k.data, 2 * l * planeBytes);
    buffer.set(layer.v.data, (2 * l + 1) * planeBytes);
  });
  const descriptor = nativeDescriptor(target, { layers: source.layers, headDim, tokens, scales: wireScales(source, buffer, target.dtype) });
  const { bytes } = translate(planTranslation(source, descriptor), buffer);
  return encodeEnvelope({
    descriptor,
    llama: { stateVersion: state.version, tokens: state.tokens, positions: stream.cells.map((c) => c.pos), kType: k.ggmlType, vType: v.ggmlType },
    kv: bytes,
  });
};

/** What the importing llama.cpp context needs the state to look like. */
export interface LlamaTarget {
  readonly model: string;
  /** Streams in the context (node-llama-cpp: one per sequence). */
  readonly sequences: number;
  /** Off: V is stored transposed. */
  readonly flashAttention: boolean;
}

/**
 * A native envelope's KV as a llama.cpp sequence state loadable into `target`'s context. The cells go into the
 * first stream with sequence id 0: llama.cpp reads a single-sequence state into whichever sequence loads it.
 */
export const nativeToLlama = (envelope: KvEnvelope, target: LlamaTarget): Uint8Array => {
  const { descriptor: from, llama } = envelope;
  const refuse = (reason: string) => new KvFormatError(`${from.format}/${from.dtype}`, `${LLAMA_FAMILY}/${target.model}`, reason);
  if (from.model !== target.model) throw refuse(`KV of model ${from.model} cannot load into ${target.model}`);
  const dtype = cacheDtype(llama.kType, llama.vType, refuse);
  const to = llamaDescriptor(from, dtype);
  const { bytes } = translate(planTranslation(from, to), envelope.kv);
  const rowBytes = from.kvHeads * from.headDim * dtypeBytes(dtype);
  const planeBytes = from.tokens * rowBytes;
  const layers: LlamaLayerState[] = Array.from({ length: from.layers }, (_, l) => ({
    k: { ggmlType: llama.kType, dtype: ggmlTypeName(llama.kType), rowBytes, data: bytes.subarray(2 * l * planeBytes, (2 * l + 1) * planeBytes) },
    v: {
      ggmlType: llama.vType,
      dtype: ggmlTypeName(llama.vType),
      transposed: false,
      rowBytes,
      elementBytes: dtypeBytes(dtype),
      embd: from.kvHeads * from.headDim,
      data: bytes.subarray((2 * l + 1) * planeBytes, (2 * l + 2) * planeBytes),
    },
  }));
  const streams: LlamaStreamState[] = Array.from({ length: target.sequences }, (_, index) =>
    index === 0
      ? { index, cells: llama.positions.map((pos) => ({ pos, seqIds: [0], ext: null })), vTransposed: false, layers }
      : { index, cells: [], vTransposed: null, layers: [] }
  );
  const state = llamaSeqState({ magic: LLAMA_STATE_SEQ_MAGIC, version: llama.stateVersion, tokens: llama.tokens, cellExt: false, caches: [{ streams }] });
  try {
    return writeLlamaSeqState(target.flashAttention ? state : setVTransposed(state, true));
  } catch (error) {
    throw refuse(errorMessage(error));
  }
};
