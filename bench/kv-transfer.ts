// `npm run bench:kv` (transfer part): KV bytes through Tandem's NATS channel (offer, CRC-32 per chunk,
// credits) against a raw NATS publish of the same bytes in the same chunk size on a private nats-server, and
// through the direct TCP channel against a raw loopback socket, all measured in this run. One JSON line each.
import { randomFillSync } from "node:crypto";
import { createConnection, createServer } from "node:net";
import { Effect, Layer } from "effect";
import { connect } from "nats";
import { summary } from "../src/cli/percentiles.ts";
import { startNatsServer } from "../src/cluster/nats-server.ts";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { NatsClient } from "../src/transport/nats-client.ts";
import { receiveWhole, wholeKv } from "../src/transport/kv-transfer.ts";
import { listenForKv, sendKv } from "../src/transport/nats-kv-channel.ts";
import { listenForKvTcp, sendKvTcp } from "../src/transport/tcp-kv-channel.ts";

const MIB = 1024 * 1024;
const PAYLOAD_BYTES = 64 * MIB;
const REPS = 5;
const WINDOW = Number(process.env.KV_WINDOW ?? 16);
const progress = (line: string) => process.stderr.write(`bench:kv-transfer ${line}\n`);

const rawPublish = async (servers: string, bytes: Uint8Array, chunkBytes: number) => {
  const pub = await connect({ servers, name: "raw-pub" });
  const sub = await connect({ servers, name: "raw-sub" });
  const times: number[] = [];
  for (let rep = 0; rep < REPS + 1; rep++) {
    let received = 0;
    const finished = new Promise<void>((resolve) => {
      const s = sub.subscribe(`raw.${rep}`, {
        callback: (_err, msg) => {
          received += msg.data.length;
          if (received >= bytes.length) {
            s.unsubscribe();
            resolve();
          }
        },
      });
    });
    await sub.flush();
    const started = performance.now();
    for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
      pub.publish(`raw.${rep}`, bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes)));
      // Let the socket drain like a real sender would, instead of buffering 64 MiB in the client.
      if ((offset / chunkBytes) % 8 === 7) await pub.flush();
    }
    await finished;
    if (rep > 0) times.push(performance.now() - started);
  }
  await pub.close();
  await sub.close();
  return times;
};

const tandemChannel = (servers: string, bytes: Uint8Array, chunkBytes: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const logLayer = Log.layer({ bench: "kv-transfer" });
      const sender = yield* Layer.build(NatsClient.layer({ servers, name: "kv-sender" }));
      const receiver = yield* Layer.build(Layer.merge(NatsClient.layer({ servers, name: "kv-receiver" }), logLayer));
      const subjects = subjectsFor("bench");
      const times: number[] = [];
      for (let rep = 0; rep < REPS + 1; rep++) {
        const transferId = `b${rep}`;
        const started = performance.now();
        const received = yield* Effect.scoped(
          Effect.gen(function* () {
            const offered = yield* listenForKv({ subjects, transferId, window: WINDOW, idleTimeoutMs: 10_000 }).pipe(
              Effect.provide(receiver),
            );
            const [payload] = yield* Effect.all([
              offered.pipe(Effect.flatMap(receiveWhole), Effect.provide(receiver)),
              sendKv({ subjects, transferId, payload: wholeKv(bytes, "bench"), chunkBytes, stallTimeoutMs: 10_000 }).pipe(Effect.provide(sender)),
            ], { concurrency: 2 });
            return payload;
          }),
        );
        if (received.bytes.length !== bytes.length) throw new Error("short transfer");
        if (rep > 0) times.push(performance.now() - started);
      }
      return times;
    }),
  );

/** A raw loopback socket moving the same bytes in the same writes: the floor under the TCP channel. */
const rawSocket = async (bytes: Uint8Array, chunkBytes: number) => {
  const times: number[] = [];
  for (let rep = 0; rep < REPS + 1; rep++) {
    let received = 0;
    const server = createServer((socket) =>
      socket.on("data", (d: Uint8Array) => {
        received += d.length;
        if (received >= bytes.length) socket.end(new Uint8Array([6]));
      })
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: "127.0.0.1", port }, async () => {
        for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
          if (!socket.write(bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes)))) {
            await new Promise((r) => socket.once("drain", r));
          }
        }
      });
      socket.setNoDelay(true);
      socket.once("data", () => resolve());
      socket.once("error", reject);
    });
    if (rep > 0) times.push(performance.now() - started);
    server.close();
  }
  return times;
};

const tcpChannel = (bytes: Uint8Array, chunkBytes: number) =>
  Effect.gen(function* () {
    const times: number[] = [];
    for (let rep = 0; rep < REPS + 1; rep++) {
      const started = performance.now();
      const received = yield* Effect.scoped(
        Effect.gen(function* () {
          const { port, receive } = yield* listenForKvTcp("127.0.0.1", 10_000);
          const [payload] = yield* Effect.all([
            receive.pipe(Effect.flatMap(receiveWhole)),
            sendKvTcp({ host: "127.0.0.1", port, transferId: `tcp${rep}`, payload: wholeKv(bytes, "bench"), chunkBytes, stallTimeoutMs: 10_000 }),
          ], { concurrency: 2 });
          return payload;
        }),
      );
      if (received.bytes.length !== bytes.length) throw new Error("short transfer");
      if (rep > 0) times.push(performance.now() - started);
    }
    return times;
  });

const gbps = (ms: number) => PAYLOAD_BYTES / 1e9 / (ms / 1000);

const main = async () => {
  const server = await startNatsServer({ maxPayload: 8 * MIB });
  try {
    const bytes = new Uint8Array(PAYLOAD_BYTES);
    for (let o = 0; o < bytes.length; o += 65536) randomFillSync(bytes.subarray(o, o + 65536));
    /** Measures the channel and its raw baseline per chunk size and prints one JSON line each. */
    const compare = async (
      channel: "nats" | "tcp",
      baseline: "rawNatsGbPerSec" | "rawSocketGbPerSec",
      target: number,
      chunkSizes: ReadonlyArray<number>,
      measureRaw: (chunkBytes: number) => Promise<number[]>,
      measureChannel: (chunkBytes: number) => Promise<number[]>,
    ) => {
      for (const chunkBytes of chunkSizes) {
        progress(`${channel}, chunks of ${chunkBytes / 1024} KiB: raw baseline`);
        const raw = summary(await measureRaw(chunkBytes));
        progress(`${channel}, chunks of ${chunkBytes / 1024} KiB: Tandem channel`);
        const measured = summary(await measureChannel(chunkBytes));
        const ratio = gbps(measured.p50) / gbps(raw.p50);
        const line = {
          bench: "kv-transfer",
          channel,
          payloadBytes: PAYLOAD_BYTES,
          chunkBytes,
          gbPerSec: Math.round(gbps(measured.p50) * 1000) / 1000,
          [baseline]: Math.round(gbps(raw.p50) * 1000) / 1000,
          ratioToRaw: Math.round(ratio * 1000) / 1000,
          target,
          meetsTarget: ratio >= target,
          msP50: measured.p50,
          rawMsP50: raw.p50,
        };
        process.stdout.write(`${JSON.stringify(line)}\n`);
      }
    };
    await compare(
      "nats",
      "rawNatsGbPerSec",
      0.7,
      [256 * 1024, 1 * MIB],
      (chunkBytes) => rawPublish(server.url, bytes, chunkBytes),
      (chunkBytes) => Effect.runPromise(tandemChannel(server.url, bytes, chunkBytes)),
    );
    await compare(
      "tcp",
      "rawSocketGbPerSec",
      0.8,
      [1 * MIB, 4 * MIB],
      (chunkBytes) => rawSocket(bytes, chunkBytes),
      (chunkBytes) => Effect.runPromise(tcpChannel(bytes, chunkBytes)),
    );
  } finally {
    await server.stop();
  }
};

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`bench:kv-transfer: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
