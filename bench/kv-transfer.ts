// `npm run bench:kv` (transfer part): KV bytes through Tandem's NATS channel (offer, CRC-32 per chunk,
// credits) against a raw NATS publish of the same bytes in the same chunk size, both measured in this run on a
// private nats-server. One JSON line per result.
import { randomFillSync } from "node:crypto";
import { Effect, Layer } from "effect";
import { connect } from "nats";
import { summary } from "../src/cli/percentiles.ts";
import { startNatsServer } from "../src/cluster/nats-server.ts";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { NatsClient } from "../src/transport/nats-client.ts";
import { listenForKv, sendKv } from "../src/transport/nats-kv-channel.ts";

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
            const receiveAll = yield* listenForKv({ subjects, transferId, window: WINDOW, idleTimeoutMs: 10_000 }).pipe(
              Effect.provide(receiver),
            );
            const [payload] = yield* Effect.all([
              receiveAll.pipe(Effect.provide(receiver)),
              sendKv({ subjects, transferId, bytes, chunkBytes, format: "bench", stallTimeoutMs: 10_000 }).pipe(Effect.provide(sender)),
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

const gbps = (ms: number) => PAYLOAD_BYTES / 1e9 / (ms / 1000);

const main = async () => {
  const server = await startNatsServer({ maxPayload: 8 * MIB });
  try {
    const bytes = new Uint8Array(PAYLOAD_BYTES);
    for (let o = 0; o < bytes.length; o += 65536) randomFillSync(bytes.subarray(o, o + 65536));
    for (const chunkBytes of [256 * 1024, 1 * MIB]) {
      progress(`chunks of ${chunkBytes / 1024} KiB: raw NATS publish`);
      const raw = summary(await rawPublish(server.url, bytes, chunkBytes));
      progress(`chunks of ${chunkBytes / 1024} KiB: Tandem NATS channel`);
      const channel = summary(await Effect.runPromise(tandemChannel(server.url, bytes, chunkBytes)));
      const ratio = gbps(channel.p50) / gbps(raw.p50);
      process.stdout.write(
        `${
          JSON.stringify({
            bench: "kv-transfer",
            channel: "nats",
            payloadBytes: PAYLOAD_BYTES,
            chunkBytes,
            gbPerSec: Math.round(gbps(channel.p50) * 1000) / 1000,
            rawNatsGbPerSec: Math.round(gbps(raw.p50) * 1000) / 1000,
            ratioToRaw: Math.round(ratio * 1000) / 1000,
            target: 0.7,
            meetsTarget: ratio >= 0.7,
            msP50: channel.p50,
            rawMsP50: raw.p50,
          })
        }\n`,
      );
    }
  } finally {
    await server.stop();
  }
};

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`bench:kv-transfer: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
