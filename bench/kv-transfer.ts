// `npm run bench:kv` (transfer part): KV bytes through Tandem's NATS channel (offer, a checksum per chunk,
// credits) against a raw NATS publish of the same bytes in the same chunk size on a private nats-server, and
// through the direct TCP channel against a raw loopback socket, the raw receivers landing the bytes in a
// payload-sized buffer as any receiver of a cache must (and, beside them, the same raw paths landing the bytes
// nowhere), all measured in this run. One JSON line each.
// The sender is this process and the receiver a child process (bench/kv-receiver.ts), as two workers are in
// production, for the channels and their baselines alike. The receiver hands each payload back to its pool
// once checked, as a decode worker does once the KV is imported; its pool buffers and the raw TCP receiver's
// landing buffer are the same kind of memory (a landing buffer from `new Uint8Array` ran ~1.5× slower here, which
// would flatter the channel). The sender's bytes sit in checksum memory with the block checksums their producer
// made while writing them, as the prefill worker's layers do (src/transport/llama-kv-layers.ts); a `kv-produce`
// line prints what making those checksums costs the producer, and two more TCP lines have the sender hash each
// chunk itself, from checksum memory and from plain memory (through the 64 KiB stage). Channel and baseline runs
// alternate, so a change in the machine's load hits both.
import { randomFillSync } from "node:crypto";
import { loadavg } from "node:os";
import { Effect, Layer } from "effect";
import { summary } from "../src/cli/percentiles.ts";
import { startNatsServer } from "../src/cluster/nats-server.ts";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { wholeKv } from "../src/transport/kv-transfer.ts";
import { NatsClient } from "../src/transport/nats-client.ts";
import { DEFAULT_WINDOW_BYTES, sendKv } from "../src/transport/nats-kv-channel.ts";
import { sendKvTcp } from "../src/transport/tcp-kv-channel.ts";
import { copyWithBlockChecksums } from "../src/kv/checksum/block-checksums.ts";
import { hashableBuffer } from "../src/kv/checksum/kv-hash.ts";
import { startKvReceiver } from "./kv-receiver-process.ts";

const MIB = 1024 * 1024;
type SenderMemory = "hashable" | "plain";
/** Who made the chunk checksums: the producer while it wrote the layer (as the prefill worker does), or the sender. */
type Checksums = "producer" | "sender";
const PAYLOAD_BYTES = 64 * MIB;
const REPS = Number(process.env.KV_TRANSFER_REPS ?? 9);
/** The NATS receiver's credit window (a decode worker's default unless KV_WINDOW_BYTES says otherwise). */
const WINDOW_BYTES = Number(process.env.KV_WINDOW_BYTES ?? DEFAULT_WINDOW_BYTES);
const BENCH_ID = "kvbench";
const progress = (line: string) => process.stderr.write(`bench:kv-transfer ${line}\n`);
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
const gbps = (ms: number) => PAYLOAD_BYTES / 1e9 / (ms / 1000);

/**
 * What making the checksums costs the producer: copying a cache into send memory with each block hashed right
 * after it is written, against the same copy without (best of 9 alternating runs of each, into reused memory as a
 * prefill worker's export would be). One JSON line.
 */
const produce = (source: Uint8Array) =>
  Effect.sync(() => {
    const into = hashableBuffer(source.length);
    let copyMs = Infinity;
    let fusedMs = Infinity;
    for (let rep = 0; rep < 9; rep++) {
      let started = performance.now();
      into.set(source);
      copyMs = Math.min(copyMs, performance.now() - started);
      started = performance.now();
      copyWithBlockChecksums([source], into);
      fusedMs = Math.min(fusedMs, performance.now() - started);
    }
    const line = {
      bench: "kv-produce",
      payloadBytes: source.length,
      copyGbPerSec: round(gbps(copyMs)),
      copyWithBlockChecksumsGbPerSec: round(gbps(fusedMs)),
      /** What the checksums add to the producer's copy, in ms per payload. */
      checksumMs: round(fusedMs - copyMs, 1),
      loadAverage: round(loadavg()[0]!, 2),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });

const program = Effect.gen(function* () {
  const server = yield* Effect.acquireRelease(Effect.promise(() => startNatsServer({ maxPayload: 8 * MIB })), (s) => Effect.promise(() => s.stop()));
  const receiver = yield* Effect.acquireRelease(Effect.promise(() => startKvReceiver(server.url, BENCH_ID)), (r) => Effect.promise(() => r.stop()));
  const sender = yield* Layer.build(Layer.merge(NatsClient.layer({ servers: server.url, name: "kv-sender" }), Log.layer({ bench: "kv-transfer" })));
  const plain = new Uint8Array(PAYLOAD_BYTES);
  for (let o = 0; o < plain.length; o += 65536) randomFillSync(plain.subarray(o, o + 65536));
  const hashable = hashableBuffer(PAYLOAD_BYTES);
  const sums = copyWithBlockChecksums([plain], hashable);
  yield* produce(plain);
  let transfers = 0;

  /**
   * Ms for one transfer through Tandem's NATS channel: from the first byte sent until the sender hears that the
   * receiver holds every chunk checked (its last credit), as the raw sender waits for the receiver's ack. The
   * receiver's own "usable" announcement is then awaited to check the size, outside the timing.
   */
  const natsChannel = (bytes: Uint8Array, chunkBytes: number, blockSums: Uint32Array | undefined) =>
    Effect.gen(function* () {
      const transferId = `nats-${transfers++}`;
      yield* Effect.promise(() => receiver.listenNats(transferId, WINDOW_BYTES));
      const usable = receiver.usable(transferId);
      const started = performance.now();
      yield* sendKv({ subjects: subjectsFor(BENCH_ID), transferId, payload: wholeKv(bytes, "bench", blockSums), chunkBytes, stallTimeoutMs: 10_000 }).pipe(
        Effect.provide(sender),
      );
      const ms = performance.now() - started;
      const { bytes: got } = yield* Effect.promise(() => usable);
      if (got !== bytes.length) return yield* Effect.die(new Error(`short transfer: ${got} bytes`));
      return ms;
    });

  /** Ms for one transfer through Tandem's TCP channel, until the receiver's "done" frame (every chunk checked). */
  const tcpChannel = (bytes: Uint8Array, chunkBytes: number, blockSums: Uint32Array | undefined) =>
    Effect.gen(function* () {
      const transferId = `tcp-${transfers++}`;
      const usable = receiver.usable(transferId);
      const started = performance.now();
      yield* sendKvTcp({ host: "127.0.0.1", port: receiver.tcpPort, transferId, payload: wholeKv(bytes, "bench", blockSums), chunkBytes, stallTimeoutMs: 10_000 });
      const ms = performance.now() - started;
      const { bytes: got } = yield* Effect.promise(() => usable);
      if (got !== bytes.length) return yield* Effect.die(new Error(`short transfer: ${got} bytes`));
      return ms;
    });

  /** One warm-up pair, then REPS alternating runs of the baseline and the channel; prints one JSON line. */
  const compare = (
    channel: "nats" | "tcp",
    baseline: "rawNatsGbPerSec" | "rawSocketGbPerSec",
    target: number,
    chunkBytes: number,
    senderMemory: SenderMemory,
    checksums: Checksums,
    raw: () => Promise<number>,
    tandem: Effect.Effect<number, unknown>,
    /** The same raw path with the bytes landing nowhere, reported beside the baseline (read, not kept). */
    floor?: () => Promise<number>,
  ) =>
    Effect.gen(function* () {
      const rawTimes: number[] = [];
      const times: number[] = [];
      const floorTimes: number[] = [];
      for (let rep = 0; rep <= REPS; rep++) {
        progress(`${channel}, chunks of ${chunkBytes / 1024} KiB, ${senderMemory} sender memory, checksums by the ${checksums}: ${rep === 0 ? "warm-up" : `rep ${rep}/${REPS}`}`);
        const rawMs = yield* Effect.promise(raw);
        const ms = yield* tandem;
        const floorMs = floor === undefined ? 0 : yield* Effect.promise(floor);
        if (rep > 0) {
          rawTimes.push(rawMs);
          times.push(ms);
          floorTimes.push(floorMs);
        }
      }
      const measured = summary(times).p50;
      const rawMs = summary(rawTimes).p50;
      // Each channel run against the baseline run just before it, which saw the same machine: the load here
      // swings within seconds, and a ratio of pairs is steadier than a ratio of medians taken apart.
      const ratio = summary(times.map((ms, i) => rawTimes[i]! / ms)).p50;
      const line = {
        bench: "kv-transfer",
        channel,
        payloadBytes: PAYLOAD_BYTES,
        chunkBytes,
        ...(channel === "nats" ? { windowBytes: WINDOW_BYTES } : {}),
        senderMemory,
        checksums,
        reps: REPS,
        gbPerSec: round(gbps(measured)),
        [baseline]: round(gbps(rawMs)),
        /** Median over the runs of (baseline time ÷ channel time), each channel run paired with the baseline run before it. */
        ratioToRaw: round(ratio),
        ratioOfMedians: round(gbps(measured) / gbps(rawMs)),
        target,
        meetsTarget: ratio >= target,
        ...(floor === undefined ? {} : {
          landingNowhereGbPerSec: round(gbps(summary(floorTimes).p50)),
          ratioToLandingNowhere: round(gbps(measured) / gbps(summary(floorTimes).p50)),
        }),
        msP50: round(measured, 1),
        rawMsP50: round(rawMs, 1),
        /** Other work on the shared machine skews every figure: the 1-minute load average at the end. */
        loadAverage: round(loadavg()[0]!, 2),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    });

  const nats = (chunkBytes: number, bytes: Uint8Array, memory: SenderMemory, checksums: Checksums) =>
    compare(
      "nats",
      "rawNatsGbPerSec",
      0.7,
      chunkBytes,
      memory,
      checksums,
      () => receiver.rawNats(bytes, chunkBytes, WINDOW_BYTES, true),
      natsChannel(bytes, chunkBytes, checksums === "producer" ? sums : undefined),
      () => receiver.rawNats(bytes, chunkBytes, WINDOW_BYTES, false),
    );
  const tcp = (chunkBytes: number, bytes: Uint8Array, memory: SenderMemory, checksums: Checksums) =>
    compare(
      "tcp",
      "rawSocketGbPerSec",
      0.8,
      chunkBytes,
      memory,
      checksums,
      () => receiver.rawTcp(bytes, chunkBytes, true),
      tcpChannel(bytes, chunkBytes, checksums === "producer" ? sums : undefined),
      () => receiver.rawTcp(bytes, chunkBytes, false),
    );
  // Chunk sizes: 1 MiB is the NATS default (TANDEM_KV_CHUNK_BYTES), 4 MiB the TCP one (prefill-worker.ts).
  yield* nats(1 * MIB, hashable, "hashable", "producer");
  yield* nats(256 * 1024, hashable, "hashable", "producer");
  yield* tcp(1 * MIB, hashable, "hashable", "producer");
  yield* tcp(4 * MIB, hashable, "hashable", "producer");
  // The sender hashing each chunk itself: from its checksum memory, and from plain memory through the stage.
  yield* tcp(4 * MIB, hashable, "hashable", "sender");
  yield* tcp(4 * MIB, plain, "plain", "sender");
});

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (error) => {
  process.stderr.write(`bench:kv-transfer: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
