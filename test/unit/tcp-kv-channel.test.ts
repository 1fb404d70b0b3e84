// The direct TCP channel over real loopback sockets: payloads arrive byte-exact whatever the chunking, and
// a corrupt stream is refused with a typed error instead of being handed on.
import { randomFillSync } from "node:crypto";
import { createConnection } from "node:net";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { listenForKvTcp, sendKvTcp } from "../../src/transport/tcp-kv-channel.ts";

const transfer = (bytes: Uint8Array, chunkBytes: number) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000);
        const [received] = yield* Effect.all([
          receive,
          sendKvTcp({ host: "127.0.0.1", port, transferId: "t1", bytes, chunkBytes, format: "fmt-a", stallTimeoutMs: 5_000 }),
        ], { concurrency: 2 });
        return received;
      }),
    ),
  );

describe("direct TCP KV channel", () => {
  it("delivers payloads byte-exact for chunk sizes that do and do not divide them", async () => {
    const bytes = randomFillSync(new Uint8Array(3 * 1024 * 1024 + 17));
    for (const chunkBytes of [4096, 65536, 1 << 20, 8 << 20]) {
      const received = await transfer(bytes, chunkBytes);
      expect(received.format).toBe("fmt-a");
      expect(received.bytes.length).toBe(bytes.length);
      expect(Buffer.compare(received.bytes, bytes)).toBe(0);
    }
    const empty = await transfer(new Uint8Array(0), 4096);
    expect(empty.bytes.length).toBe(0);
  });

  it("refuses a stream that is not Tandem KV frames with a typed error", async () => {
    const exit = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000);
          const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(new Uint8Array(64).fill(7)));
          return yield* Effect.exit(receive);
        }),
      ),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    expect(JSON.stringify(exit)).toContain("kv_protocol");
  });
});
