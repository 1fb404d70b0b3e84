// A KV transfer whose direct TCP connection fails is re-routed over NATS and still arrives byte-exact, on a
// real nats-server; the TCP target is a loopback port with nothing listening (connection refused).
import { randomFillSync } from "node:crypto";
import { Effect, Layer, Stream } from "effect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freePort, type NatsServerHandle, startNatsServer } from "../../src/cluster/nats-server.ts";
import { subjectsFor, type TandemError } from "../../src/protocol/index.ts";
import { receiveWhole } from "../../src/transport/kv-transfer.ts";
import { sendKvRouted } from "../../src/transport/kv-route.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";
import { listenForKv } from "../../src/transport/nats-kv-channel.ts";

let server: NatsServerHandle;
beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

it("TCP refused → the transfer is re-routed over NATS and arrives byte-exact", async () => {
  const subjects = subjectsFor("route");
  const layers = [randomFillSync(new Uint8Array(70_000)), randomFillSync(new Uint8Array(3_000))];
  const deadPort = await freePort();
  const rerouted: TandemError[] = [];
  const out = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const client = yield* Layer.build(NatsClient.layer({ servers: server.url, name: "kv-route" }));
        const offered = yield* listenForKv({ subjects, transferId: "t1", windowBytes: 4 * 16_384, idleTimeoutMs: 5_000 }).pipe(Effect.provide(client));
        const receiving = offered.pipe(Effect.flatMap(receiveWhole), Effect.provide(client));
        const sending = sendKvRouted({
          tcp: { host: "127.0.0.1", port: deadPort, chunkBytes: 1 << 20 },
          nats: { subjects, transferId: "t1", chunkBytes: 16_384, stallTimeoutMs: 5_000 },
          payload: Effect.sync(() => ({ format: "fmt", layerBytes: layers.map((l) => l.length), layers: Stream.fromIterable(layers) })),
          onReroute: (error) => Effect.sync(() => void rerouted.push(error)),
        }).pipe(Effect.provide(client));
        const [received] = yield* Effect.all([receiving, sending], { concurrency: 2 });
        return received;
      }),
    ),
  );
  expect(rerouted).toHaveLength(1);
  expect(Buffer.from(out.bytes).equals(Buffer.concat(layers))).toBe(true);
  expect(out.format).toBe("fmt");
});
