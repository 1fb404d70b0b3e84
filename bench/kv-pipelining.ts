// `npm run bench:kv` (pipelining part): a synthetic Llama-3-8B-shaped cache — 32 layers × 8 KV heads × 128
// dim × 2,048 tokens, K and V in bf16: 8 MiB a layer, 256 MiB in all — produced layer by layer with a per-layer
// compute delay in this process, moved through each channel (NATS on a private nats-server with max_payload
// 8 MiB, direct TCP on loopback) to a receiving child process (bench/kv-receiver.ts), as between two workers.
// Measured, in this run: one layer's transfer time; the time from the last layer produced to the whole cache
// received and checked at the receiver, pipelined (each layer sent as soon as it exists) and whole-blob (sent
// once every layer exists). Target: pipelined ≤ 1.5 × one layer's transfer time — one layer sent on its own,
// back to back (`oneLayerTransferMs`), and, per producer, one layer sent on its own after the producer's
// per-layer compute time of idle (`oneLayerAfterIdleMs`), which is how each layer of a pipelined transfer leaves:
// on this VM a transfer that starts after ~45 ms of idle takes about twice as long as one started warm. The
// producing host waits out each layer's compute asleep or polling (see HostWait): a sleeping core is the slow
// one. Three producers:
//   - h200-calibrated: the H200's measured prefill rate (../shared/data/calibration/h200-llama3-8b.json: 2,048
//     tokens in ~51 ms, 1.6 ms a layer), whatever this machine's link does;
//   - h200-on-400gbps-ratio: compute per layer as many times one layer's transfer as on real hardware (an H200
//     makes 8 MiB every 1.6 ms; a 400 Gb/s link moves it in 0.17 ms: 9.5×);
//   - 1.25x-link: only 1.25× slower than this machine's link (a stress case: any slowdown of the link backs up).
// The cache sits in checksum memory with the block checksums of each layer, as the prefill worker's layers do
// (made while it copies them out of the engine's state), so the sender does not hash the chunks itself.
// Both clocks are the same machine's (performance.timeOrigin + now()), so times compare across the processes.
import { randomFillSync } from "node:crypto";
import { loadavg } from "node:os";
import { type Cause, Effect, Layer, Queue, Stream } from "effect";
import { summary } from "../src/cli/percentiles.ts";
import { startNatsServer } from "../src/cluster/nats-server.ts";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { blockChecksums } from "../src/kv/checksum/block-checksums.ts";
import { hashableBuffer } from "../src/kv/checksum/kv-hash.ts";
import { type KvPayload, wholeKv } from "../src/transport/kv-transfer.ts";
import { NatsClient } from "../src/transport/nats-client.ts";
import { DEFAULT_WINDOW_BYTES, sendKv } from "../src/transport/nats-kv-channel.ts";
import { sendKvTcp } from "../src/transport/tcp-kv-channel.ts";
import { epochNow, type KvReceiverProcess, startKvReceiver } from "./kv-receiver-process.ts";

const MIB = 1024 * 1024;
const LAYERS = 32;
const LAYER_BYTES = 2 * 8 * 128 * 2048 * 2; // K and V × kv heads × head dim × tokens × bf16
const H200_LAYER_MS = 51 / LAYERS; // 2,048-token prefill of Llama-3-8B on an H200, interpolated from the calibration
const LINK_400GBPS_LAYER_MS = (LAYER_BYTES / 50e9) * 1000; // 400 Gb/s = 50 GB/s
const REPS = Number(process.env.KV_PIPELINE_REPS ?? 5);
const BENCH_ID = "kvpipe";
const progress = (line: string) => process.stderr.write(`bench:kv-pipelining ${line}\n`);
const round = (x: number) => Math.round(x * 100) / 100;

/** The synthetic cache: its bytes and each layer's block checksums. */
interface Cache {
  readonly bytes: Uint8Array;
  readonly layerSums: ReadonlyArray<Uint32Array>;
  readonly wholeSums: Uint32Array;
}

/** Sends one payload to the receiving process; resolves with the moment (epoch ms) it held every layer, checked. */
type Channel = (transferId: string, payload: KvPayload) => Effect.Effect<number, unknown>;
/** The channel's raw baseline (a plain NATS publish or loopback socket) moving `bytes`: ms until the receiver has all. */
type RawPath = (bytes: Uint8Array) => Effect.Effect<number>;

const natsChannel = (servers: string, receiver: KvReceiverProcess) =>
  Effect.gen(function* () {
    const sender = yield* Layer.build(Layer.merge(NatsClient.layer({ servers, name: "kv-sender" }), Log.layer({ bench: BENCH_ID })));
    const channel: Channel = (transferId, payload) =>
      Effect.gen(function* () {
        yield* Effect.promise(() => receiver.listenNats(transferId, DEFAULT_WINDOW_BYTES));
        const usable = receiver.usable(transferId);
        yield* sendKv({ subjects: subjectsFor(BENCH_ID), transferId, payload, chunkBytes: 1 * MIB, stallTimeoutMs: 30_000 }).pipe(Effect.provide(sender));
        return (yield* Effect.promise(() => usable)).usableAt;
      });
    return channel;
  });

const tcpChannel = (receiver: KvReceiverProcess): Channel => (transferId, payload) =>
  Effect.gen(function* () {
    const usable = receiver.usable(transferId);
    yield* sendKvTcp({ host: "127.0.0.1", port: receiver.tcpPort, transferId, payload, chunkBytes: 4 * MIB, stallTimeoutMs: 30_000 });
    return (yield* Effect.promise(() => usable)).usableAt;
  });

/**
 * How the producing host waits out a layer's compute: asleep (the thread blocks; on this VM an idle core comes
 * back slow for milliseconds) or polling (it checks for the layer between turns of its event loop, as a CUDA
 * host thread spin-waits on the device by default, so its core stays at speed and the sender keeps sending).
 */
type HostWait = "sleep" | "poll";
const POLL_SLICE_MS = 0.25;

const waitUntil = (dueAt: number, hostWait: HostWait) =>
  hostWait === "sleep"
    ? Effect.suspend(() => (dueAt > epochNow() ? Effect.sleep(dueAt - epochNow()) : Effect.void))
    : Effect.promise(async () => {
      while (epochNow() < dueAt) {
        const sliceEnd = Math.min(dueAt, epochNow() + POLL_SLICE_MS);
        while (epochNow() < sliceEnd);
        await new Promise((resolve) => setImmediate(resolve));
      }
    });

/**
 * Produces the cache's layers on their own fiber (compute does not wait for the network), `layerMs` apart,
 * and moves them — each as it exists (pipelined) or all at once after the last (whole blob). Returns the time
 * from the last layer produced to the receiver holding the whole cache, and the producer's actual time per layer
 * (timers and a busy event loop make it slower than asked).
 */
const tail = (channel: Channel, cache: Cache, layerMs: number, hostWait: HostWait, pipelined: boolean, transferId: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const produced = yield* Queue.unbounded<Uint8Array, Cause.Done>();
      const startAt = epochNow();
      let lastAt = 0;
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          for (let layer = 0; layer < LAYERS; layer++) {
            // Layer i is due at start + (i + 1) × layerMs: a timer that fires late (they do not go below 1 ms)
            // is made up on the next, so the rate holds on average.
            yield* waitUntil(startAt + (layer + 1) * layerMs, hostWait);
            yield* Queue.offer(produced, cache.bytes.subarray(layer * LAYER_BYTES, (layer + 1) * LAYER_BYTES));
          }
          lastAt = epochNow();
          yield* Queue.end(produced);
        }),
      );
      const payload: KvPayload = pipelined
        ? {
          format: "bench",
          layerBytes: Array.from({ length: LAYERS }, () => LAYER_BYTES),
          layers: Stream.fromQueue(produced),
          blockChecksums: (layer) => cache.layerSums[layer],
        }
        : yield* Stream.runDrain(Stream.fromQueue(produced)).pipe(Effect.as(wholeKv(cache.bytes, "bench", cache.wholeSums)));
      const usableAt = yield* channel(transferId, payload);
      return { tailMs: usableAt - lastAt, producedMsPerLayer: (lastAt - startAt) / LAYERS };
    }),
  );

const oneLayer = (channel: Channel, cache: Cache, transferId: string, idleMs = 0, hostWait: HostWait = "sleep") =>
  Effect.gen(function* () {
    yield* waitUntil(epochNow() + idleMs, hostWait);
    const started = epochNow();
    const usableAt = yield* channel(transferId, wholeKv(cache.bytes.subarray(0, LAYER_BYTES), "bench", cache.layerSums[0]));
    return usableAt - started;
  });

/** The median of REPS × 3 single-layer timings (`time(rep)` gives one, in ms). */
const singleLayerMedian = (time: (rep: number) => Effect.Effect<number, unknown>) =>
  Effect.gen(function* () {
    const times: number[] = [];
    for (let rep = 0; rep < REPS * 3; rep++) times.push(yield* time(rep));
    return summary(times).p50;
  });

const measure = (name: "nats" | "tcp", channel: Channel, raw: RawPath, cache: Cache) =>
  Effect.gen(function* () {
    yield* oneLayer(channel, cache, `${name}-warm`);
    const layerMs = yield* singleLayerMedian((rep) => oneLayer(channel, cache, `${name}-layer${rep}`));
    // The raw path moving one layer back to back: beside the raw path after idle, what idling costs the machine.
    const rawLayerMs = yield* singleLayerMedian(() => raw(cache.bytes.subarray(0, LAYER_BYTES)));
    // The link's sustained rate: the whole cache with no compute in front of it.
    const sustained: number[] = [];
    for (let rep = 0; rep < REPS; rep++) sustained.push((yield* tail(channel, cache, 0, "sleep", true, `${name}-sustained${rep}`)).tailMs);
    const linkLayerMs = summary(sustained).p50 / LAYERS;
    progress(`${name}: one layer ${round(layerMs)} ms, sustained ${round(linkLayerMs)} ms a layer`);
    const h200RatioMs = Math.ceil((H200_LAYER_MS / LINK_400GBPS_LAYER_MS) * Math.max(layerMs, linkLayerMs));
    const overLinkMs = Math.ceil(1.25 * Math.max(layerMs, linkLayerMs));
    const producers: ReadonlyArray<{ producer: string; perLayerComputeMs: number; hostWait: HostWait }> = [
      { producer: "h200-calibrated", perLayerComputeMs: H200_LAYER_MS, hostWait: "sleep" },
      { producer: "h200-on-400gbps-ratio", perLayerComputeMs: h200RatioMs, hostWait: "sleep" },
      { producer: "h200-on-400gbps-ratio", perLayerComputeMs: h200RatioMs, hostWait: "poll" },
      { producer: "1.25x-link", perLayerComputeMs: overLinkMs, hostWait: "sleep" },
      { producer: "1.25x-link", perLayerComputeMs: overLinkMs, hostWait: "poll" },
    ];
    for (const [which, { producer, perLayerComputeMs, hostWait }] of producers.entries()) {
      const pipelined: number[] = [];
      const whole: number[] = [];
      const produced: number[] = [];
      for (let rep = 0; rep < REPS; rep++) {
        // Transfer ids are subject tokens: no dots.
        const run = yield* tail(channel, cache, perLayerComputeMs, hostWait, true, `${name}-producer${which}-p${rep}`);
        pipelined.push(run.tailMs);
        produced.push(run.producedMsPerLayer);
        whole.push((yield* tail(channel, cache, perLayerComputeMs, hostWait, false, `${name}-producer${which}-w${rep}`)).tailMs);
        progress(`${name}, ${producer}, host ${hostWait}s: rep ${rep + 1}/${REPS}: tail ${round(run.tailMs)} ms pipelined, ${round(whole.at(-1)!)} ms whole`);
      }
      const afterIdleMs = yield* singleLayerMedian((rep) => oneLayer(channel, cache, `${name}-producer${which}-idle${rep}`, perLayerComputeMs, hostWait));
      // The same idle before the raw path: how much of a cold start is the machine's, not the channel's.
      const rawAfterIdleMs = yield* singleLayerMedian(() =>
        waitUntil(epochNow() + perLayerComputeMs, hostWait).pipe(Effect.andThen(raw(cache.bytes.subarray(0, LAYER_BYTES))))
      );
      const tailMs = summary(pipelined).p50;
      const wholeMs = summary(whole).p50;
      const line = {
        bench: "kv-pipelining",
        channel: name,
        producer,
        hostWait,
        layers: LAYERS,
        layerBytes: LAYER_BYTES,
        cacheBytes: LAYERS * LAYER_BYTES,
        perLayerComputeMs: round(perLayerComputeMs),
        producedMsPerLayer: round(summary(produced).p50),
        oneLayerTransferMs: round(layerMs),
        sustainedLinkMsPerLayer: round(linkLayerMs),
        lastLayerToUsableMs: round(tailMs),
        baselineWholeBlobMs: round(wholeMs),
        speedupVsWholeBlob: round(wholeMs / tailMs),
        target: "lastLayerToUsableMs <= 1.5 x oneLayerTransferMs",
        targetMs: round(1.5 * layerMs),
        met: tailMs <= 1.5 * layerMs,
        /** One layer on its own after perLayerComputeMs of idle, as each pipelined layer starts. */
        oneLayerAfterIdleMs: round(afterIdleMs),
        metAgainstLayerAfterIdle: tailMs <= 1.5 * afterIdleMs,
        /** The raw baseline (plain NATS publish or loopback socket) moving one layer back to back, and after the same idle. */
        rawOneLayerTransferMs: round(rawLayerMs),
        rawOneLayerAfterIdleMs: round(rawAfterIdleMs),
        /** Other work on the machine skews every figure; the 1-minute load average at the end of the line's runs. */
        loadAverage: round(loadavg()[0]!),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  });

const program = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(Effect.promise(() => startNatsServer({ maxPayload: 8 * MIB })), (s) => Effect.promise(() => s.stop()));
  const receiver = yield* Effect.acquireRelease(Effect.promise(() => startKvReceiver(server.url, BENCH_ID)), (r) => Effect.promise(() => r.stop()));
  const bytes = hashableBuffer(LAYERS * LAYER_BYTES);
  for (let o = 0; o < bytes.length; o += 65536) randomFillSync(bytes.subarray(o, o + 65536));
  const layerSums = Array.from({ length: LAYERS }, (_, layer) => blockChecksums(bytes.subarray(layer * LAYER_BYTES, (layer + 1) * LAYER_BYTES)));
  // Layers are whole blocks, so the whole cache's block checksums are the layers' end to end.
  const wholeSums = new Uint32Array(layerSums.reduce((n, sums) => n + sums.length, 0));
  layerSums.forEach((sums, layer) => wholeSums.set(sums, layer * sums.length));
  const cache: Cache = { bytes, layerSums, wholeSums };
  const only = process.env.KV_PIPELINE_CHANNEL;
  const rawNats: RawPath = (bytes) => Effect.promise(() => receiver.rawNats(bytes, 1 * MIB, DEFAULT_WINDOW_BYTES, true));
  const rawTcp: RawPath = (bytes) => Effect.promise(() => receiver.rawTcp(bytes, 4 * MIB, true));
  if (only !== "tcp") yield* measure("nats", yield* natsChannel(server.url, receiver), rawNats, cache);
  if (only !== "nats") yield* measure("tcp", tcpChannel(receiver), rawTcp, cache);
});

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (error) => {
  process.stderr.write(`bench:kv-pipelining: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
