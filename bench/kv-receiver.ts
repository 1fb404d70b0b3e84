// The receiving process of the KV transfer benchmarks (bench/kv-transfer.ts, bench/kv-pipelining.ts): in
// production the sender and the receiver of a KV transfer are two processes (two workers), so the benchmarks
// run the receiver — of the Tandem channels and of their raw baselines alike — here, in a child process.
//
//   kv-receiver.ts <nats url> <bench id>
//
// It serves, until its stdin closes:
//   - Tandem's NATS channel: a request on `<bench id>.listen` carrying a transfer id subscribes to that transfer
//     (the reply goes once the subscription is live);
//   - Tandem's TCP channel: a KV listener on 127.0.0.1 (its port is in the first stdout line);
//   - raw NATS: bytes published on `<bench id>.raw`, received as the channel receives them (the bulk reader),
//     each message copied to its place in a payload-sized buffer (or to one scratch buffer, when the
//     announcement says so); when a request on `<bench id>.raw.expect` has announced
//     N bytes ("N land" or "N count"), the N-th byte is acknowledged on `<bench id>.raw.ack`;
//   - raw TCP: a plain listener (its port is in the first stdout line) that reads, without allocating, into a
//     payload-sized buffer or a 4 MiB one (the connection's 9th byte says which) and, once it has as many bytes
//     as the first 8 announce, writes one byte back.
// Every Tandem transfer, once whole and checked, is announced on `<bench id>.usable` as
// `{ transferId, usableAt }` (ms since the epoch with sub-ms precision, the same clock as the sender's).
import { createServer } from "node:net";
import { Cause, Effect, Layer } from "effect";
import { connect, JSONCodec } from "nats";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { type IncomingKv, receiveWhole } from "../src/transport/kv-transfer.ts";
import { kvPayloadPool } from "../src/transport/kv-payload-pool.ts";
import { NatsClient } from "../src/transport/nats-client.ts";
import { openNatsBulkReader } from "../src/transport/nats-bulk-reader.ts";
import { listenForKv } from "../src/transport/nats-kv-channel.ts";
import { readInto } from "../src/transport/socket-read-in-place.ts";
import { hashableBuffer } from "../src/kv/checksum/kv-hash.ts";
import { serveKvTcp } from "../src/transport/tcp-kv-channel.ts";

import { epochNow, type Usable } from "./kv-receiver-process.ts";

const [servers, benchId] = process.argv.slice(2);
if (!servers || !benchId) {
  process.stderr.write("usage: kv-receiver.ts <nats url> <bench id>\n");
  process.exit(2);
}
const json = JSONCodec<unknown>();

const main = async () => {
  const control = await connect({ servers, name: "kv-bench-receiver-control" });
  // A decode worker's pool: payloads are handed back once checked, as a worker hands them back once imported.
  const pool = kvPayloadPool(1024 * 1024 * 1024);
  const usable = (incoming: IncomingKv) =>
    receiveWhole(incoming).pipe(
      Effect.map((received) => control.publish(`${benchId}.usable`, json.encode({ transferId: received.transferId, usableAt: epochNow(), bytes: received.bytes.length } satisfies Usable))),
      Effect.ensuring(Effect.sync(() => incoming.release())),
      Effect.catch((error) => Effect.sync(() => process.stderr.write(`kv-receiver: ${incoming.transferId}: ${error.message}\n`))),
    );

  // Raw NATS: land each message at its place in one payload-sized buffer (what any receiver of a cache must
  // do; reused across transfers, and the same kind of memory as the channel's pool), or copy it to one scratch
  // buffer over and over (landing nowhere); acknowledge the announced total.
  let rawExpected = Number.POSITIVE_INFINITY;
  let rawReceived = 0;
  let rawLand = true;
  let rawLanding: Uint8Array = new Uint8Array(0);
  control.subscribe(`${benchId}.raw.expect`, {
    callback: (_e, msg) => {
      const [bytes, mode] = new TextDecoder().decode(msg.data).split(" ");
      rawExpected = Number(bytes);
      rawLand = mode === "land";
      if (rawLand && rawLanding.length < rawExpected) rawLanding = hashableBuffer(rawExpected);
      rawReceived = 0;
      msg.respond();
    },
  });
  // Received the way the channel receives (the bulk reader: no allocation per message, each payload copied
  // once from the read buffer to where it goes), so the baseline is the fastest raw NATS receive we have.
  const rawReader = openNatsBulkReader({ server: () => control.getServer(), name: "kv-bench-receiver-raw" });
  const nowhere = new Uint8Array(8 * 1024 * 1024);
  await rawReader.subscribe(`${benchId}.raw`, {
    begin: (_headers, length) => (rawLand ? rawLanding.subarray(rawReceived, rawReceived + length) : nowhere.subarray(0, length)),
    end: (payload) => {
      rawReceived += payload.length;
      if (rawReceived >= rawExpected) {
        rawExpected = Number.POSITIVE_INFINITY;
        control.publish(`${benchId}.raw.ack`);
      }
    },
  });

  // Raw TCP: an 8-byte length and a mode byte, then that many bytes; one byte back at the end. Read the way
  // the TCP channel reads (no allocation per read), either each byte to its place in one payload-sized buffer
  // (mode 1: what any receiver of a cache must do; reused across transfers, and the same kind of memory as the
  // channel's pool) or all into one 4 MiB buffer over and over (mode 0: landing nowhere).
  const scratch = new Uint8Array(4 * 1024 * 1024);
  let landing: Uint8Array = new Uint8Array(0);
  const rawServer = createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
    let expected = -1;
    let count = 0;
    let land = false;
    const head = new Uint8Array(9);
    let socket = accepted;
    const want = () => {
      if (expected < 0) return head.subarray(count);
      if (!land) return scratch;
      const rest = landing.subarray(count, expected);
      return rest.length > 0 ? rest : scratch;
    };
    const advance = (n: number) => {
      count += n;
      if (expected < 0 && count === head.length) {
        expected = Number(new DataView(head.buffer).getBigUint64(0, true));
        land = head[8] === 1;
        if (land && landing.length < expected) landing = hashableBuffer(expected);
        count = 0;
      } else if (expected >= 0 && count >= expected) socket.end(new Uint8Array([6]));
    };
    socket = readInto(accepted, want, advance);
  });
  await new Promise<void>((resolve) => rawServer.listen(0, "127.0.0.1", () => resolve()));

  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* Layer.build(Layer.merge(NatsClient.layer({ servers, name: "kv-bench-receiver" }), Log.layer({ bench: benchId })));
        const subjects = subjectsFor(benchId);
        const tcpPort = yield* serveKvTcp("127.0.0.1", 30_000, usable, pool);
        control.subscribe(`${benchId}.listen`, {
          callback: (_e, msg) => {
            const { transferId, windowBytes } = json.decode(msg.data) as { transferId: string; windowBytes: number };
            if (process.env.KV_RECEIVER_DEBUG) process.stderr.write(`kv-receiver: listen ${transferId}\n`);
            Effect.runFork(
              Effect.scoped(
                Effect.gen(function* () {
                  const offered = yield* listenForKv({ subjects, transferId, windowBytes, idleTimeoutMs: 30_000, pool });
                  msg.respond();
                  yield* offered.pipe(Effect.flatMap(usable));
                }),
              ).pipe(
                Effect.provide(client),
                Effect.catchCause((cause) => Effect.sync(() => process.stderr.write(`kv-receiver: cannot listen for ${transferId}: ${Cause.pretty(cause)}\n`))),
              ),
            );
          },
        });
        yield* Effect.promise(() => control.flush());
        process.stdout.write(`${JSON.stringify({ tcpPort, rawTcpPort: (rawServer.address() as { port: number }).port })}\n`);
        // Serve until the parent closes stdin (or dies).
        yield* Effect.callback<void>((resume) => {
          process.stdin.on("end", () => resume(Effect.void));
          process.stdin.on("close", () => resume(Effect.void));
          process.stdin.resume();
        });
      }),
    ),
  );
  rawServer.close();
  rawReader.close();
  await control.close();
};

main().then(() => process.exit(0), (error) => {
  process.stderr.write(`kv-receiver: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
