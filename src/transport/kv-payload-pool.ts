// Receive buffers for KV transfers, reused. A fresh buffer for every incoming cache costs the receiver a page
// fault per 4 KiB on first write (a 64 MiB payload written into new memory ran 4–6× slower than into reused
// memory here) and garbage-collection work for the external memory; RDMA stacks register receive regions once
// for the same reason. Pooled buffers are also `hashableBuffer`s, so each chunk's checksum is computed where it
// landed rather than through a stage. A receiver hands a payload back with `release` once nothing reads it any
// more; a payload never released is simply garbage-collected, so forgetting costs speed, never correctness.
import { hashableBuffer } from "../kv/checksum/kv-hash.ts";

export interface KvPayloadPool {
  /** A view of exactly `bytes` bytes, over a reused buffer when one fits. Contents are arbitrary. */
  acquire(bytes: number): Uint8Array;
  /** Hands `payload` (from `acquire`) back; the caller must not touch it afterwards. */
  release(payload: Uint8Array): void;
  /** Bytes held in free buffers. */
  readonly idleBytes: number;
}

/** Buffers are allocated in multiples of this, so payloads of nearly equal size share them. */
const GRANULE = 64 * 1024;

/**
 * A pool keeping at most `maxIdleBytes` in free buffers. A payload takes the smallest free buffer that holds it
 * and is at most twice its size (a small payload does not pin a large buffer).
 */
export const kvPayloadPool = (maxIdleBytes: number): KvPayloadPool => {
  /** Every buffer this pool made that is still referenced here, whole, by its ArrayBuffer. */
  const whole = new WeakMap<ArrayBufferLike, Uint8Array>();
  const idle: Uint8Array[] = [];
  let idleBytes = 0;
  return {
    acquire(bytes) {
      let best = -1;
      for (let i = 0; i < idle.length; i++) {
        const size = idle[i]!.length;
        if (size >= bytes && size <= 2 * Math.max(bytes, GRANULE) && (best < 0 || size < idle[best]!.length)) best = i;
      }
      if (best < 0) {
        const buffer = hashableBuffer(Math.max(GRANULE, Math.ceil(bytes / GRANULE) * GRANULE));
        whole.set(buffer.buffer, buffer);
        return buffer.subarray(0, bytes);
      }
      const [buffer] = idle.splice(best, 1);
      idleBytes -= buffer!.length;
      return buffer!.subarray(0, bytes);
    },
    release(payload) {
      const buffer = whole.get(payload.buffer);
      if (buffer === undefined || payload.byteOffset !== buffer.byteOffset || idle.includes(buffer)) return;
      if (idleBytes + buffer.length > maxIdleBytes) return;
      idle.push(buffer);
      idleBytes += buffer.length;
    },
    get idleBytes() {
      return idleBytes;
    },
  };
};

/** No reuse: every payload is a fresh buffer. */
export const freshPayloads: KvPayloadPool = {
  acquire: (bytes) => new Uint8Array(bytes),
  release: () => {},
  idleBytes: 0,
};
