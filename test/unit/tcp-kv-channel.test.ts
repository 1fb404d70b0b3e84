// The direct TCP channel over real loopback sockets: payloads arrive byte-exact whatever the chunking and
// layering, layer by layer; a chunk corrupted on the way (by a proxy in between) is asked for again; a stream
// that never gets a chunk through intact, or is not Tandem KV frames, ends in a typed error.
import { randomFillSync } from "node:crypto";
import { createConnection, createServer, type Server } from "node:net";
import { Deferred, Effect, Exit, Stream } from "effect";
import { describe, expect, it } from "vitest";
import { blockChecksums, KV_CHECKSUM_BLOCK } from "../../src/kv/checksum/block-checksums.ts";
import { type KvPayload, receiveWhole, wholeKv } from "../../src/transport/kv-transfer.ts";
import { listenForKvTcp, sendKvTcp } from "../../src/transport/tcp-kv-channel.ts";

const payloadOf = (layers: ReadonlyArray<Uint8Array>, source = Stream.fromIterable(layers)): KvPayload => ({
  format: "fmt-a",
  layerBytes: layers.map((l) => l.length),
  layers: source,
});

/**
 * A TCP proxy that flips a byte in the payload of the chunk frames `corrupt` picks (by chunk index and how
 * many times that chunk has passed), parsing the sender's frames (24-byte header, length at 12, kind at 4).
 */
const corruptingProxy = async (port: number, corrupt: (index: number, copy: number) => boolean) => {
  const copies = new Map<number, number>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    upstream.on("data", (d) => client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    let pending = Buffer.alloc(0);
    client.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32LE(12)) {
        const length = pending.readUInt32LE(12);
        const frame = Buffer.from(pending.subarray(0, 24 + length));
        pending = pending.subarray(24 + length);
        if (frame[4] === 2) {
          const index = frame.readUInt32LE(8);
          const copy = copies.get(index) ?? 0;
          copies.set(index, copy + 1);
          if (length > 0 && corrupt(index, copy)) frame[24 + (length >> 1)] ^= 0x10;
        }
        upstream.write(frame);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as { port: number }).port, copies, close: () => server.close() };
};

const transfer = (payload: KvPayload, chunkBytes: number, options: { corrupt?: (index: number, copy: number) => boolean } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000);
      const proxy = options.corrupt === undefined ? undefined : yield* Effect.promise(() => corruptingProxy(port, options.corrupt!));
      yield* Effect.addFinalizer(() => Effect.sync(() => proxy?.close()));
      const [received] = yield* Effect.all([
        receive.pipe(
          Effect.flatMap((incoming) => {
            const layers: Uint8Array[] = [];
            return Stream.runForEach(incoming.layers, (bytes) => Effect.sync(() => layers.push(bytes.slice()))).pipe(
              Effect.andThen(receiveWhole(incoming)),
              Effect.map((whole) => ({ ...whole, layers })),
            );
          }),
        ),
        sendKvTcp({ host: "127.0.0.1", port: proxy?.port ?? port, transferId: "t1", payload, chunkBytes, stallTimeoutMs: 5_000 }),
      ], { concurrency: 2 });
      return { ...received, copies: proxy?.copies };
    }),
  );

describe("direct TCP KV channel", () => {
  it("delivers a whole blob byte-exact for chunk sizes that do and do not divide it", async () => {
    const bytes = randomFillSync(new Uint8Array(3 * 1024 * 1024 + 17));
    for (const chunkBytes of [4096, 65536, 1 << 20, 8 << 20]) {
      const received = await Effect.runPromise(transfer(wholeKv(bytes, "fmt-a"), chunkBytes));
      expect(received.format).toBe("fmt-a");
      expect(Buffer.compare(received.bytes, bytes)).toBe(0);
    }
    const empty = await Effect.runPromise(transfer(wholeKv(new Uint8Array(0), "fmt-a"), 4096));
    expect(empty.bytes.length).toBe(0);
  });

  it("delivers layers of any size in order, and layer 0 before the producer has made layer 1", async () => {
    const layers = [70_000, 0, 65_536, 3].map((n) => randomFillSync(new Uint8Array(n)));
    const layer0Arrived = Deferred.makeUnsafe<void>();
    const source = Stream.fromIterable(layers.keys()).pipe(
      Stream.mapEffect((i) => (i === 0 ? Effect.succeed(layers[0]!) : Deferred.await(layer0Arrived).pipe(Effect.as(layers[i]!)))),
    );
    const received = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000);
          const [out] = yield* Effect.all([
            receive.pipe(
              Effect.flatMap((incoming) => {
                const got: Uint8Array[] = [];
                return Stream.runForEach(incoming.layers, (bytes) =>
                  Effect.sync(() => got.push(bytes.slice())).pipe(Effect.andThen(Deferred.succeed(layer0Arrived, undefined)))
                ).pipe(Effect.as(got));
              }),
            ),
            sendKvTcp({ host: "127.0.0.1", port, transferId: "t2", payload: payloadOf(layers, source), chunkBytes: 16_384, stallTimeoutMs: 5_000 }),
          ], { concurrency: 2 });
          return out;
        }),
      ),
    );
    expect(received.map((l) => l.length)).toEqual(layers.map((l) => l.length));
    received.forEach((l, i) => expect(Buffer.compare(l, layers[i]!)).toBe(0));
  });

  it("asks again for a chunk corrupted on the way and completes with the right bytes", async () => {
    const layers = [50_000, 20_000].map((n) => randomFillSync(new Uint8Array(n)));
    const received = await Effect.runPromise(
      transfer(payloadOf(layers), 8192, { corrupt: (index, copy) => copy === 0 && (index === 1 || index === 7) }),
    );
    expect(received.copies?.get(1)).toBe(2);
    expect(received.copies?.get(7)).toBe(2);
    expect(Buffer.compare(received.bytes, Buffer.concat(layers))).toBe(0);
  });

  it("with the producer's block checksums, a chunk of several blocks corrupted in a later block is asked for again", async () => {
    const B = KV_CHECKSUM_BLOCK;
    const layers = [3 * B + 100, 2 * B].map((n) => randomFillSync(new Uint8Array(n)));
    const payload: KvPayload = { ...payloadOf(layers), blockChecksums: (layer) => blockChecksums(layers[layer]!) };
    // 2-block chunks: layer 0 is chunks 0–1, layer 1 chunk 2; the flipped byte (mid-chunk) is in each chunk's block 1.
    const received = await Effect.runPromise(transfer(payload, 2 * B, { corrupt: (index, copy) => copy === 0 && (index === 0 || index === 2) }));
    expect(received.copies?.get(0)).toBe(2);
    expect(received.copies?.get(1)).toBe(1);
    expect(received.copies?.get(2)).toBe(2);
    expect(Buffer.compare(received.bytes, Buffer.concat(layers))).toBe(0);
  });

  it("gives up with kv_chunk_lost when a chunk never arrives intact", async () => {
    const bytes = randomFillSync(new Uint8Array(40_000));
    const exit = await Effect.runPromise(Effect.exit(transfer(wholeKv(bytes, "fmt-a"), 8192, { corrupt: (index) => index === 2 })));
    expect(Exit.isFailure(exit)).toBe(true);
    expect(JSON.stringify(exit)).toContain("kv_chunk_lost");
  });

  it("refuses a stream that is not Tandem KV frames with a typed error", async () => {
    const exit = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const { port, receive } = yield* listenForKvTcp("127.0.0.1", 5_000);
          const socket = createConnection({ host: "127.0.0.1", port }, () => socket.write(new Uint8Array(64).fill(7)));
          socket.on("error", () => {}); // the receiver resets the connection on bytes it has not read
          return yield* Effect.exit(receive);
        }),
      ),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    expect(JSON.stringify(exit)).toContain("kv_protocol");
  });
});
