// Splits a KV payload into chunks that fit under NATS max_payload with room for the message envelope.

/** Bytes reserved for the msgpack envelope and NATS headers around each chunk. */
export const CHUNK_ENVELOPE_BYTES = 4 * 1024;
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

export const chunkSizeFor = (maxPayload: number, requested = DEFAULT_CHUNK_BYTES): number =>
  Math.max(1, Math.min(requested, maxPayload - CHUNK_ENVELOPE_BYTES));

export const chunkCount = (totalBytes: number, chunkBytes: number) => Math.max(1, Math.ceil(totalBytes / chunkBytes));

export const chunkAt = (bytes: Uint8Array, chunkBytes: number, index: number): Uint8Array =>
  bytes.subarray(index * chunkBytes, Math.min(bytes.length, (index + 1) * chunkBytes));
