// Splits a KV payload into chunks that fit under NATS max_payload with room for the message envelope. A
// payload is a sequence of layers laid end to end; each layer is chunked on its own, so a layer is complete
// without any byte of the next (which may not exist yet). A whole blob is the one-layer case.
import { KV_CHECKSUM_BLOCK } from "./checksum/block-checksums.ts";
import { kvChecksum } from "./checksum/kv-hash.ts";

/** Bytes reserved for the msgpack envelope and NATS headers around each chunk. */
export const CHUNK_ENVELOPE_BYTES = 4 * 1024;
/**
 * 1 MiB: against a raw NATS publish in the same chunk size the channel's per-message work weighs less than at
 * 256 KiB (0.72–0.84× raw against 0.65–0.77× in five runs here, docs/kv.md).
 */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

/**
 * The chunk size to use under a server's `maxPayload`: at most `requested`, with room for the envelope, and a whole
 * number of checksum blocks when it is at least one, so a producer's block checksums serve every chunk.
 */
export const chunkSizeFor = (maxPayload: number, requested = DEFAULT_CHUNK_BYTES): number => {
  const size = Math.max(1, Math.min(requested, maxPayload - CHUNK_ENVELOPE_BYTES));
  return size >= KV_CHECKSUM_BLOCK ? size - (size % KV_CHECKSUM_BLOCK) : size;
};

export const chunkCount = (totalBytes: number, chunkBytes: number) => Math.max(1, Math.ceil(totalBytes / chunkBytes));

export const chunkAt = (bytes: Uint8Array, chunkBytes: number, index: number): Uint8Array =>
  bytes.subarray(index * chunkBytes, Math.min(bytes.length, (index + 1) * chunkBytes));

/** Where every chunk of a layered payload sits. Chunk indexes run over all layers, in layer order. */
export interface KvLayout {
  readonly layerBytes: ReadonlyArray<number>;
  readonly chunkBytes: number;
  readonly totalBytes: number;
  readonly chunks: number;
  /** Byte offset of each layer in the payload. */
  readonly layerOffsets: ReadonlyArray<number>;
  /** Index of each layer's first chunk, plus one entry past the end (= chunks). */
  readonly firstChunks: ReadonlyArray<number>;
  /** The layer each chunk belongs to. */
  readonly chunkLayers: Uint32Array;
}

export const kvLayout = (layerBytes: ReadonlyArray<number>, chunkBytes: number): KvLayout => {
  const layerOffsets: number[] = [];
  const firstChunks: number[] = [];
  let totalBytes = 0;
  let chunks = 0;
  for (const bytes of layerBytes) {
    layerOffsets.push(totalBytes);
    firstChunks.push(chunks);
    totalBytes += bytes;
    chunks += chunkCount(bytes, chunkBytes);
  }
  firstChunks.push(chunks);
  const chunkLayers = new Uint32Array(chunks);
  for (let layer = 0; layer < layerBytes.length; layer++) chunkLayers.fill(layer, firstChunks[layer], firstChunks[layer + 1]);
  return { layerBytes, chunkBytes, totalBytes, chunks, layerOffsets, firstChunks, chunkLayers };
};

/** Chunk `index` as a view of its layer's bytes. */
export const layerChunk = (layout: KvLayout, layerBytes: Uint8Array, index: number): Uint8Array => {
  const layer = layout.chunkLayers[index]!;
  return chunkAt(layerBytes, layout.chunkBytes, index - layout.firstChunks[layer]!);
};

/** The byte range of chunk `index` in the payload. */
export const chunkSpan = (layout: KvLayout, index: number): { readonly offset: number; readonly length: number } => {
  const layer = layout.chunkLayers[index]!;
  const within = (index - layout.firstChunks[layer]!) * layout.chunkBytes;
  return {
    offset: layout.layerOffsets[layer]! + within,
    length: Math.min(layout.chunkBytes, layout.layerBytes[layer]! - within),
  };
};

/** True when chunk `index` is the last of its layer (it carries the layer's manifest). */
export const endsLayer = (layout: KvLayout, index: number) => layout.firstChunks[layout.chunkLayers[index]! + 1] === index + 1;

/**
 * A layer's manifest: the checksum over its chunks' checksums (little-endian u32s, in order). It proves every chunk
 * of the layer arrived in its place without a second pass over the bytes.
 */
export const layerManifest = (layout: KvLayout, checksums: Uint32Array, layer: number): number => {
  const from = layout.firstChunks[layer]!;
  const to = layout.firstChunks[layer + 1]!;
  return kvChecksum(new Uint8Array(checksums.buffer, checksums.byteOffset + from * 4, (to - from) * 4));
};
