// Receive buffers for KV transfers, reused. A fresh buffer for every incoming cache costs the receiver a page
// fault per 4 KiB on first write (a 64 MiB payload written into new memory ran 4–6× slower than into reused
// memory here) and garbage-collection work for the external memory; RDMA stacks register receive regions once
// for the same reason. A receiver hands a payload back with `release` once nothing reads it any more; a payload
// never released is simply garbage-collected, so forgetting costs speed, never correctness.
export interface KvPayloadPool {
  /** A zero-offset view of exactly `bytes` bytes, over a reused buffer when one fits. Contents are arbitrary. */
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
  const idle: ArrayBuffer[] = [];
  let idleBytes = 0;
  return {
    acquire(bytes) {
      let best = -1;
      for (let i = 0; i < idle.length; i++) {
        const size = idle[i]!.byteLength;
        if (size >= bytes && size <= 2 * Math.max(bytes, GRANULE) && (best < 0 || size < idle[best]!.byteLength)) best = i;
      }
      if (best < 0) return new Uint8Array(new ArrayBuffer(Math.max(GRANULE, Math.ceil(bytes / GRANULE) * GRANULE)), 0, bytes);
      const [buffer] = idle.splice(best, 1);
      idleBytes -= buffer!.byteLength;
      return new Uint8Array(buffer!, 0, bytes);
    },
    release(payload) {
      const buffer = payload.buffer;
      if (!(buffer instanceof ArrayBuffer) || payload.byteOffset !== 0 || idle.includes(buffer)) return;
      if (idleBytes + buffer.byteLength > maxIdleBytes) return;
      idle.push(buffer);
      idleBytes += buffer.byteLength;
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
