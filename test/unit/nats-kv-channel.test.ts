// The NATS KV channel on a real nats-server: layered payloads arrive byte-exact and layer by layer (the
// receiver has layer 0 before the producer makes the next one), and a man in the middle that drops or corrupts
// chunks on their way is beaten by resends — or, when it never lets a chunk through intact, ends the
// transfer with a typed error after a bounded number of requests.
import { randomFillSync } from "node:crypto";
import { Deferred, Effect, Exit, Layer, Stream } from "effect";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockChecksums, KV_CHECKSUM_BLOCK } from "../../src/kv/checksum/block-checksums.ts";
import { type NatsServerHandle, startNatsServer } from "../../src/cluster/nats-server.ts";
import { decodeMessageResult, KvReceiverMessage, subjectsFor } from "../../src/protocol/index.ts";
import { type KvPayload, receiveWhole } from "../../src/transport/kv-transfer.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";
import { creditBudget, listenForKv, sendKv } from "../../src/transport/nats-kv-channel.ts";

let server: NatsServerHandle;
let relay: NatsConnection;
beforeAll(async () => {
  server = await startNatsServer();
  relay = await connect({ servers: server.url, name: "mitm" });
});
afterAll(async () => {
  await relay?.close();
  await server?.stop();
});

const layersOf = (sizes: ReadonlyArray<number>) => sizes.map((n) => randomFillSync(new Uint8Array(n)));
const payloadOf = (layers: ReadonlyArray<Uint8Array>, source = Stream.fromIterable(layers)): KvPayload => ({
  format: "fmt-a",
  layerBytes: layers.map((l) => l.length),
  layers: source,
});
const concat = (layers: ReadonlyArray<Uint8Array>) => Buffer.concat(layers);

type Fault = (index: number, copy: number) => "drop" | "corrupt" | undefined;

/**
 * Sender and receiver on different subject roots; a relay between them forwards the data subject (applying
 * `fault` to the `copy`-th transmission of each chunk) and the credit subject, counting resend requests.
 */
const withRelay = (transferId: string, fault: Fault) => {
  const inner = subjectsFor("sender");
  const outer = subjectsFor("receiver");
  const copies = new Map<number, number>();
  const stats = { resendRequests: 0, dropped: 0, corrupted: 0 };
  const decodeBack = decodeMessageResult(KvReceiverMessage);
  const data = relay.subscribe(inner.kvData(transferId), {
    callback: (_err, msg) => {
      const index = msg.headers?.get("Kv-Index");
      if (index === undefined || index === "") return relay.publish(outer.kvData(transferId), msg.data);
      const copy = copies.get(Number(index)) ?? 0;
      copies.set(Number(index), copy + 1);
      const verdict = fault(Number(index), copy);
      if (verdict === "drop") return void stats.dropped++;
      const bytes = new Uint8Array(msg.data);
      if (verdict === "corrupt") {
        bytes[bytes.length >> 1] ^= 0x40;
        stats.corrupted++;
      }
      relay.publish(outer.kvData(transferId), bytes, { headers: msg.headers });
    },
  });
  const credit = relay.subscribe(outer.kvCredit(transferId), {
    callback: (_err, msg) => {
      const decoded = decodeBack(msg.data);
      if (decoded._tag === "Success" && decoded.success._tag === "KvResend") stats.resendRequests++;
      relay.publish(inner.kvCredit(transferId), msg.data);
    },
  });
  return { inner, outer, stats, close: () => (data.unsubscribe(), credit.unsubscribe()) };
};

/** Runs sender and receiver (separate connections) through the relay; returns the layers as they came out. */
const transfer = (
  transferId: string,
  payload: KvPayload,
  options: { chunkBytes: number; fault?: Fault; onLayer?: (index: number) => Effect.Effect<void> },
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const route = withRelay(transferId, options.fault ?? (() => undefined));
      yield* Effect.addFinalizer(() => Effect.sync(route.close));
      const sender = yield* Layer.build(NatsClient.layer({ servers: server.url, name: "kv-sender" }));
      const receiver = yield* Layer.build(NatsClient.layer({ servers: server.url, name: "kv-receiver" }));
      const offered = yield* listenForKv({ subjects: route.outer, transferId, windowBytes: 4 * options.chunkBytes, idleTimeoutMs: 5_000, gapMs: 20 }).pipe(
        Effect.provide(receiver),
      );
      const receiving = Effect.gen(function* () {
        const incoming = yield* offered;
        const layers: Uint8Array[] = [];
        yield* Stream.runForEach(incoming.layers, (bytes) => {
          layers.push(bytes.slice());
          return options.onLayer?.(layers.length - 1) ?? Effect.void;
        });
        const whole = yield* receiveWhole(incoming);
        return { layers, whole: whole.bytes, format: whole.format };
      }).pipe(Effect.provide(receiver));
      const sending = sendKv({ subjects: route.inner, transferId, payload, chunkBytes: options.chunkBytes, stallTimeoutMs: 5_000 }).pipe(
        Effect.provide(sender),
      );
      const [received] = yield* Effect.all([receiving, sending], { concurrency: 2 });
      return { ...received, stats: route.stats };
    }),
  );

describe("NATS KV channel", () => {
  it("delivers layers of any size (empty, smaller than a chunk, not a multiple of it) byte-exact and in order", async () => {
    const layers = layersOf([5_000, 0, 4096, 12_289, 1]);
    const out = await Effect.runPromise(transfer("layers", payloadOf(layers), { chunkBytes: 4096 }));
    expect(out.format).toBe("fmt-a");
    expect(out.layers.map((l) => l.length)).toEqual([5_000, 0, 4096, 12_289, 1]);
    out.layers.forEach((l, i) => expect(Buffer.compare(l, layers[i]!)).toBe(0));
    expect(Buffer.compare(out.whole, concat(layers))).toBe(0);
    expect(out.stats.dropped + out.stats.corrupted).toBe(0);
  });

  it("hands layer 0 to the consumer before the producer has made layer 1", async () => {
    const layers = layersOf([10_000, 10_000, 3_000]);
    const layer0Arrived = Deferred.makeUnsafe<void>();
    // The producer cannot make layer 1 until the receiver's consumer has layer 0: a whole-blob channel would
    // wait forever here.
    const source = Stream.fromIterable([0, 1, 2]).pipe(
      Stream.mapEffect((i) => (i === 0 ? Effect.succeed(layers[0]!) : Deferred.await(layer0Arrived).pipe(Effect.as(layers[i]!)))),
    );
    const out = await Effect.runPromise(
      transfer("pipelined", payloadOf(layers, source), {
        chunkBytes: 4096,
        onLayer: (index) => (index === 0 ? Deferred.succeed(layer0Arrived, undefined).pipe(Effect.asVoid) : Effect.void),
      }),
    );
    expect(Buffer.compare(out.whole, concat(layers))).toBe(0);
  });

  it("asks again for dropped and corrupt chunks (middle and tail) and completes with the right bytes", async () => {
    const layers = layersOf([40_000, 30_000, 9_000]);
    // 4 KiB chunks: layer 0 is chunks 0–9, layer 1 10–17, layer 2 18–20 (the last chunk of the transfer).
    const fault: Fault = (index, copy) => {
      if (copy > 0) return undefined;
      if (index === 3 || index === 20) return "drop";
      if (index === 9 || index === 12) return "corrupt";
      return undefined;
    };
    const out = await Effect.runPromise(transfer("lossy", payloadOf(layers), { chunkBytes: 4096, fault }));
    expect(out.stats.dropped).toBe(2);
    expect(out.stats.corrupted).toBe(2);
    expect(out.stats.resendRequests).toBeGreaterThanOrEqual(3);
    out.layers.forEach((l, i) => expect(Buffer.compare(l, layers[i]!)).toBe(0));
    expect(Buffer.compare(out.whole, concat(layers))).toBe(0);
  });

  it("with the producer's block checksums, a chunk of several blocks corrupted in a later block is asked for again", async () => {
    const B = KV_CHECKSUM_BLOCK;
    const layers = layersOf([3 * B + 100, 2 * B]);
    const payload: KvPayload = { ...payloadOf(layers), blockChecksums: (layer) => blockChecksums(layers[layer]!) };
    // 2-block chunks: layer 0 is chunks 0–1, layer 1 chunk 2; the flipped byte (mid-chunk) is in each chunk's block 1.
    const fault: Fault = (index, copy) => (copy === 0 && (index === 0 || index === 2) ? "corrupt" : undefined);
    const out = await Effect.runPromise(transfer("blocks", payload, { chunkBytes: 2 * B, fault }));
    expect(out.stats.corrupted).toBe(2);
    out.layers.forEach((l, i) => expect(Buffer.compare(l, layers[i]!)).toBe(0));
  });

  it("gives up with kv_chunk_lost when a chunk never arrives intact", async () => {
    const layers = layersOf([20_000]);
    const exit = await Effect.runPromise(
      Effect.exit(transfer("hopeless", payloadOf(layers), { chunkBytes: 4096, fault: (index) => (index === 2 ? "corrupt" : undefined) })),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    expect(JSON.stringify(exit)).toContain("kv_chunk_lost");
  });

  it("keeps concurrent transfers' credit within their worker's budget, and gives the budget back when they end", async () => {
    const chunkBytes = 4096;
    const budget = creditBudget(4 * chunkBytes);
    const subjects = subjectsFor("budget");
    const allowance = new Map<string, number>();
    const watch = (transferId: string) =>
      relay.subscribe(subjects.kvCredit(transferId), {
        callback: (_err, msg) => {
          const decoded = decodeMessageResult(KvReceiverMessage)(msg.data);
          if (decoded._tag !== "Success" || decoded.success._tag !== "KvCredit" || decoded.success.upTo === 0) return;
          const ahead = decoded.success.upTo - (decoded.success.received ?? 0);
          allowance.set(transferId, Math.max(allowance.get(transferId) ?? 0, ahead));
        },
      });
    const one = (transferId: string, layers: ReadonlyArray<Uint8Array>) =>
      Effect.scoped(
        Effect.gen(function* () {
          const sub = watch(transferId);
          yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()));
          yield* Effect.promise(() => relay.flush());
          const sender = yield* Layer.build(NatsClient.layer({ servers: server.url, name: `s-${transferId}` }));
          const receiver = yield* Layer.build(NatsClient.layer({ servers: server.url, name: `r-${transferId}` }));
          // A window of 16 chunks, a budget of 4: the budget decides.
          const offered = yield* listenForKv({ subjects, transferId, windowBytes: 16 * chunkBytes, idleTimeoutMs: 5_000, budget }).pipe(
            Effect.provide(receiver),
          );
          const [whole] = yield* Effect.all([
            offered.pipe(Effect.flatMap(receiveWhole), Effect.provide(receiver)),
            sendKv({ subjects, transferId, payload: payloadOf(layers), chunkBytes, stallTimeoutMs: 5_000 }).pipe(Effect.provide(sender)),
          ], { concurrency: 2 });
          return whole.bytes;
        }),
      );
    const a = layersOf([40 * chunkBytes]);
    const b = layersOf([30 * chunkBytes, 7]);
    const [gotA, gotB] = await Effect.runPromise(Effect.all([one("ta", a), one("tb", b)], { concurrency: 2 }));
    expect(Buffer.compare(gotA, concat(a))).toBe(0);
    expect(Buffer.compare(gotB, concat(b))).toBe(0);
    // Never more than the whole budget (4 chunks) ahead of what arrived, though each asked for a window of 16.
    expect(allowance.get("ta")).toBeLessThanOrEqual(4);
    expect(allowance.get("tb")).toBeLessThanOrEqual(4);
    expect(budget.share()).toBe(4 * chunkBytes); // both transfers left it
  });
});
