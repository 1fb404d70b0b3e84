// The bytes an emulated engine exports: KV in a vendor-native layout plus what it takes to turn it back
// into a llama.cpp sequence state. Self-describing, so a receiver needs nothing but the bytes:
//
//   bytes 0..3    magic "TKVN"
//   bytes 4..7    u32 LE envelope version (1)
//   bytes 8..11   u32 LE header length H
//   bytes 12..    H bytes of UTF-8 JSON: { descriptor, llama }
//                   descriptor  the KvDescriptor of the KV that follows (src/kv/descriptor.ts: format, model,
//                               layers, kvHeads, headDim, tokens, pageSize, layout, dtype, scales)
//                   llama       { stateVersion, tokens, positions, kType, vType }: the llama.cpp state version,
//                               the token ids its header lists, each KV row's position (row t of the KV is
//                               position positions[t]) and the ggml types of the real cache's K and V
//   then          the native KV buffer, exactly nativeByteLength(descriptor) bytes (blocks padded with zeros)
//
// Everything llama.cpp-specific that vLLM would not have (stream count, sequence ids, the V transposition)
// is left out: the importing engine supplies its own.
import { Data } from "effect";
import { descriptorProblem, type KvDescriptor, nativeByteLength } from "../../kv/descriptor.ts";
import { type NativeKvFormat, nativeFormatName } from "./native-kv-format.ts";

export const ENVELOPE_MAGIC = 0x4e564b54; // "TKVN" read as a little-endian u32
export const ENVELOPE_VERSION = 1;
const PREFIX_BYTES = 12;

export class KvEnvelopeError extends Data.TaggedError("KvEnvelopeError")<{ readonly message: string }> {}

export interface LlamaRebuild {
  readonly stateVersion: number;
  readonly tokens: ReadonlyArray<number>;
  readonly positions: ReadonlyArray<number>;
  readonly kType: number;
  readonly vType: number;
}

export interface KvEnvelope {
  readonly descriptor: KvDescriptor;
  readonly llama: LlamaRebuild;
  readonly kv: Uint8Array;
}

const bad = (message: string) => new KvEnvelopeError({ message: `not a native KV envelope: ${message}` });

const integers = (value: unknown): value is number[] => Array.isArray(value) && value.every((x) => Number.isInteger(x));

/** Why the envelope's parts do not belong together, or undefined. */
const problem = (e: KvEnvelope): string | undefined => {
  const d = e.descriptor;
  if (typeof d !== "object" || d === null || typeof d.layout !== "object" || typeof d.format !== "string") return "descriptor is malformed";
  const p = descriptorProblem(d);
  if (p !== undefined) return p;
  const l = e.llama;
  if (typeof l !== "object" || l === null || !integers(l.tokens) || !integers(l.positions)) return "llama rebuild data is malformed";
  if (![l.stateVersion, l.kType, l.vType].every((x) => Number.isInteger(x))) return "llama rebuild data is malformed";
  if (l.positions.length !== d.tokens) return `${l.positions.length} positions for ${d.tokens} tokens of KV`;
  if (e.kv.length !== nativeByteLength(d)) return `KV holds ${e.kv.length} bytes, the descriptor needs ${nativeByteLength(d)}`;
  return undefined;
};

export const encodeEnvelope = (e: KvEnvelope): Uint8Array => {
  const why = problem(e);
  if (why !== undefined) throw bad(why);
  const header = new TextEncoder().encode(JSON.stringify({ descriptor: e.descriptor, llama: e.llama }));
  const out = new Uint8Array(PREFIX_BYTES + header.length + e.kv.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, ENVELOPE_MAGIC, true);
  view.setUint32(4, ENVELOPE_VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, PREFIX_BYTES);
  out.set(e.kv, PREFIX_BYTES + header.length);
  return out;
};

export const isEnvelope = (bytes: Uint8Array): boolean =>
  bytes.length >= PREFIX_BYTES && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === ENVELOPE_MAGIC;

/** The envelope's parts; the KV is a view into `bytes`. */
export const decodeEnvelope = (bytes: Uint8Array): KvEnvelope => {
  if (!isEnvelope(bytes)) throw bad(`missing magic "TKVN" (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== ENVELOPE_VERSION) throw bad(`version ${version}, expected ${ENVELOPE_VERSION}`);
  const headerBytes = view.getUint32(8, true);
  if (PREFIX_BYTES + headerBytes > bytes.length) throw bad(`header of ${headerBytes} bytes overruns the ${bytes.length}-byte envelope`);
  let header: { descriptor: KvDescriptor; llama: LlamaRebuild };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)));
  } catch (error) {
    throw bad(`header is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const envelope = { descriptor: header?.descriptor, llama: header?.llama, kv: bytes.subarray(PREFIX_BYTES + headerBytes) };
  const why = problem(envelope);
  if (why !== undefined) throw bad(why);
  return envelope;
};

/**
 * The envelope, provided it holds KV in `format` (layout, dtype, model, KV heads): an engine reads its own
 * layout only, and a translation reads only what the offer said it would get.
 */
export const decodeEnvelopeAs = (bytes: Uint8Array, format: NativeKvFormat): KvEnvelope => {
  const envelope = decodeEnvelope(bytes);
  const d = envelope.descriptor;
  if (d.format !== format.family || d.dtype !== format.dtype || d.model !== format.model || d.kvHeads !== format.kvHeads) {
    throw new KvEnvelopeError({
      message: `expected ${nativeFormatName(format)}, the envelope holds ${nativeFormatName({ family: d.format, dtype: d.dtype, model: d.model, kvHeads: d.kvHeads })}`,
    });
  }
  return envelope;
};
