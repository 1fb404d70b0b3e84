// How KV moves between any two engine formats Tandem knows: llama.cpp sequence states (named by
// src/kv/llama-format.ts) and vendor-native envelopes (named by ./native-kv-format.ts). Equal formats move
// as they are; two llama.cpp states go through the V-transpose translation; anything involving a native
// format goes through the KV planner's canonical form (a B200's vLLM FlashAttention blocks become a
// Gaudi 3's vLLM-Gaudi blocks, or a llama.cpp state). Another model, or a pair no path joins, is refused
// with both format names. The gateway asks `canTranslateKv` before pairing workers; the decode worker
// translates before importing (./kv-wire.ts), so untranslated bytes never reach an engine.
import { KvFormatError } from "../../kv/kv-format-error.ts";
import { type LlamaStateFormat, parseFormatName, planStateTranslation } from "../../kv/llama-format.ts";
import { translateState } from "../../kv/llama-translate.ts";
import { planTranslation, translate } from "../../kv/planner.ts";
import { decodeEnvelopeAs, encodeEnvelope } from "./kv-envelope.ts";
import { llamaToNative, nativeToLlama } from "./llama-native.ts";
import { nativeDescriptor, type NativeKvFormat, parseNativeFormatName } from "./native-kv-format.ts";
import { wireScales } from "./wire-scales.ts";

type KvMove =
  | { readonly _tag: "Identity" }
  | { readonly _tag: "LlamaToLlama" }
  | { readonly _tag: "LlamaToNative"; readonly to: NativeKvFormat }
  | { readonly _tag: "NativeToLlama"; readonly from: NativeKvFormat; readonly to: LlamaStateFormat }
  | { readonly _tag: "NativeToNative"; readonly from: NativeKvFormat; readonly to: NativeKvFormat }
  | { readonly _tag: "Refused"; readonly reason: string };

const planMove = (from: string, to: string): KvMove => {
  if (from === to) return { _tag: "Identity" };
  const nativeFrom = parseNativeFormatName(from);
  const nativeTo = parseNativeFormatName(to);
  const llamaFrom = parseFormatName(from);
  const llamaTo = parseFormatName(to);
  if (llamaFrom && llamaTo) {
    const plan = planStateTranslation(from, to);
    return plan._tag === "Refused" ? plan : { _tag: "LlamaToLlama" };
  }
  const source = nativeFrom ?? llamaFrom;
  const target = nativeTo ?? llamaTo;
  if (source === undefined || target === undefined) return { _tag: "Refused", reason: "unknown format" };
  if (source.model !== target.model) return { _tag: "Refused", reason: "different models" };
  if (nativeFrom && nativeTo) {
    return nativeFrom.kvHeads === nativeTo.kvHeads
      ? { _tag: "NativeToNative", from: nativeFrom, to: nativeTo }
      : { _tag: "Refused", reason: `${nativeFrom.kvHeads} ≠ ${nativeTo.kvHeads} KV heads` };
  }
  return nativeTo ? { _tag: "LlamaToNative", to: nativeTo } : { _tag: "NativeToLlama", from: nativeFrom!, to: llamaTo! };
};

/** Why KV in `from` can never become KV in `to`, or undefined when it can (as it is, or translated). */
export const kvMoveRefusal = (from: string, to: string): string | undefined => {
  const move = planMove(from, to);
  return move._tag === "Refused" ? move.reason : undefined;
};

/** True when KV in `from` can become KV in `to` (as it is, or translated). */
export const canTranslateKv = (from: string, to: string): boolean => kvMoveRefusal(from, to) === undefined;

/** One native envelope as another: same KV, the target's layout and dtype, through canonical. */
const nativeToNative = (bytes: Uint8Array, from: NativeKvFormat, to: NativeKvFormat): Uint8Array => {
  const { descriptor: source, llama, kv } = decodeEnvelopeAs(bytes, from);
  const descriptor = nativeDescriptor(to, { layers: source.layers, headDim: source.headDim, tokens: source.tokens, scales: wireScales(source, kv, to.dtype) });
  return encodeEnvelope({ descriptor, llama, kv: translate(planTranslation(source, descriptor), kv).bytes });
};

/** `bytes` (KV in format `from`) in format `to`; throws a KvFormatError naming both when it cannot. */
export const translateKv = (bytes: Uint8Array, from: string, to: string): Uint8Array => {
  const move = planMove(from, to);
  try {
    switch (move._tag) {
      case "Identity":
        return bytes;
      case "Refused":
        throw new KvFormatError(from, to, move.reason);
      case "LlamaToLlama":
        return translateState(bytes, from, to);
      case "LlamaToNative":
        return llamaToNative(bytes, move.to);
      case "NativeToLlama":
        return nativeToLlama(decodeEnvelopeAs(bytes, move.from), move.to);
      case "NativeToNative":
        return nativeToNative(bytes, move.from, move.to);
    }
  } catch (error) {
    if (error instanceof KvFormatError && error.from === from && error.to === to) throw error;
    throw new KvFormatError(from, to, error instanceof Error ? error.message : String(error));
  }
};
