// Receive buffers are reused: a released payload's buffer serves the next payload that fits it (and is not
// more than twice its size), the pool keeps no more than its cap, double and foreign releases are ignored; and
// a transfer received into a reused, dirty buffer still arrives byte-exact (its checksums computed in place).
import { randomFillSync } from "node:crypto";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { kvPayloadPool } from "../../src/transport/kv-payload-pool.ts";
import { receiveWhole, wholeKv } from "../../src/transport/kv-transfer.ts";
import { listenForKvTcp, sendKvTcp } from "../../src/transport/tcp-kv-channel.ts";

const KIB = 1024;

describe("kvPayloadPool", () => {
  it("reuses a released buffer for a payload that fits it, as an exact-length view", () => {
    const pool = kvPayloadPool(16 * 1024 * KIB);
    const a = pool.acquire(1000 * KIB);
    pool.release(a);
    expect(pool.idleBytes).toBe(1024 * KIB);
    const b = pool.acquire(900 * KIB);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(900 * KIB);
    expect(b.byteOffset).toBe(a.byteOffset);
    expect(pool.idleBytes).toBe(0);
  });

  it("does not hand a small payload a buffer over twice its size, nor a large one a buffer too small", () => {
    const pool = kvPayloadPool(64 * 1024 * KIB);
    const big = pool.acquire(4096 * KIB);
    pool.release(big);
    expect(pool.acquire(1024 * KIB).buffer).not.toBe(big.buffer);
    expect(pool.acquire(8192 * KIB).buffer).not.toBe(big.buffer);
    expect(pool.acquire(4000 * KIB).buffer).toBe(big.buffer);
  });

  it("takes the smallest free buffer that fits", () => {
    const pool = kvPayloadPool(64 * 1024 * KIB);
    const large = pool.acquire(3000 * KIB);
    const small = pool.acquire(2000 * KIB);
    pool.release(large);
    pool.release(small);
    expect(pool.acquire(1800 * KIB).buffer).toBe(small.buffer);
  });

  it("keeps at most its cap and ignores double or foreign releases", () => {
    const pool = kvPayloadPool(1024 * KIB);
    const a = pool.acquire(768 * KIB);
    const b = pool.acquire(768 * KIB);
    pool.release(a);
    pool.release(a);
    pool.release(b); // over the cap: dropped
    pool.release(new Uint8Array(128 * KIB)); // not from this pool
    pool.release(a.subarray(1)); // not where the payload starts
    expect(pool.idleBytes).toBe(768 * KIB);
    expect(pool.acquire(768 * KIB).buffer).toBe(a.buffer);
    expect(pool.acquire(768 * KIB).buffer).not.toBe(b.buffer);
  });

  it("a transfer received into a reused buffer that held other bytes arrives byte-exact", async () => {
    const pool = kvPayloadPool(16 * 1024 * KIB);
    const receiveOnce = (bytes: Uint8Array) =>
      Effect.scoped(
        Effect.gen(function* () {
          const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000, pool);
          const [incoming] = yield* Effect.all([
            receive,
            sendKvTcp({ host: "127.0.0.1", port, transferId: "t", payload: wholeKv(bytes, "fmt"), chunkBytes: 64 * KIB, stallTimeoutMs: 5_000 }),
          ], { concurrency: 2 });
          const received = yield* receiveWhole(incoming);
          const copy = received.bytes.slice();
          const buffer = received.bytes.buffer;
          incoming.release();
          return { copy, buffer };
        }),
      );
    const first = randomFillSync(new Uint8Array(700 * KIB));
    const second = randomFillSync(new Uint8Array(600 * KIB));
    const one = await Effect.runPromise(receiveOnce(first));
    const two = await Effect.runPromise(receiveOnce(second));
    expect(Buffer.compare(one.copy, first)).toBe(0);
    expect(two.buffer).toBe(one.buffer);
    expect(Buffer.compare(two.copy, second)).toBe(0);
  });
});
