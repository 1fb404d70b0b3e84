// Leases are TTL entries: the broker's lease bucket ages entries out after the lease TTL, so when the broker
// process itself is killed in the middle of a transfer, the lease it left in the bucket disappears by itself; and a
// broker started while such a lease is still there takes it over and ends it like its own.
import { Effect, Fiber, Layer, Schema } from "effect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runKvBroker } from "../../actors/kv-broker/kv-broker.ts";
import { generate } from "../../src/client/client.ts";
import { CancelCommand, decodeMessage, LeaseRecord, TransferEvent } from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";

const LEASE_TTL_MS = 2_000;
let t: TestCluster;

beforeAll(async () => {
  // Small chunks make the transfer long enough to kill the broker in the middle of it.
  t = await startTestCluster({
    prefill: 1,
    decode: 1,
    restartWorkers: false,
    env: { TANDEM_KV_CHUNK_BYTES: "1024", TANDEM_LEASE_TTL_MS: String(LEASE_TTL_MS), TANDEM_KV_STALL_MS: "8000" },
  });
});

afterAll(async () => {
  await t?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it("killing the broker mid-transfer: its lease entry ages out of the bucket within the TTL, deleted by nobody", async () => {
  const bucket = await t.nc.jetstream().views.kv(t.subjects.leasesBucket);
  expect((await bucket.status()).ttl).toBe(LEASE_TTL_MS);

  const broker = t.cluster.processes.find((p) => p.role === "broker")!.child;
  let transferId = "";
  let chunksSeen = 0;
  const sniffer = t.nc.subscribe(`tandem.v1.${t.subjects.cluster}.kv.*.data`, {
    callback: (_, msg) => {
      chunksSeen++;
      if (chunksSeen === 3 && transferId === "") {
        transferId = msg.subject.split(".")[4]!;
        broker.kill("SIGKILL");
      }
    },
  });
  const outcome = generate(t.nc, t.subjects, {
    prompt: "Once upon a time there was a little girl named Lily. ".repeat(25),
    maxTokens: 8,
    timeoutMs: 10_000,
  });
  while (transferId === "") await sleep(10);
  sniffer.unsubscribe();

  // The broker is dead; its lease is still in the bucket, carrying its expiry.
  const entry = await bucket.get(transferId);
  expect(entry?.operation).toBe("PUT");
  const lease = Schema.decodeUnknownSync(LeaseRecord)(entry!.json());
  expect(lease.transferId).toBe(transferId);
  expect(lease.expiresAt - lease.openedAt).toBe(LEASE_TTL_MS);
  const putAt = entry!.created.getTime();

  // It disappears on its own within the TTL (plus the server's expiry check), leaving no delete marker behind.
  let gone = false;
  while (!gone && Date.now() - putAt < LEASE_TTL_MS + 1_500) {
    await sleep(50);
    gone = (await bucket.get(transferId)) === null;
  }
  expect(gone).toBe(true);
  expect((await bucket.status()).values).toBe(0);
  await outcome.catch(() => undefined);
});

it("a broker that starts takes over a lease left in the bucket: it expires on time, with its event and a cancel to the receiver", async () => {
  // The first test left the cluster without a broker. A lease as a dead broker would have left it:
  const bucket = await t.nc.jetstream().views.kv(t.subjects.leasesBucket);
  const openedAt = Date.now();
  const lease = { transferId: "tleftover0", requestId: "r-left", attempt: 0, sender: "prefill-0", receiver: "decode-0", openedAt, expiresAt: openedAt + 800 };
  await bucket.put(lease.transferId, JSON.stringify(lease));
  const events: TransferEvent[] = [];
  const cancels: string[] = [];
  const eventSub = t.nc.subscribe(t.subjects.events("transfer"), {
    callback: (_, msg) => void Effect.runPromise(decodeMessage(TransferEvent)(msg.data)).then((e) => events.push(e)),
  });
  const cancelSub = t.nc.subscribe(t.subjects.worker("decode-0", "cancel"), {
    callback: (_, msg) => void Effect.runPromise(decodeMessage(CancelCommand)(msg.data)).then((c) => cancels.push(c.requestId)),
  });
  await t.nc.flush();
  const layers = Layer.mergeAll(NatsClient.layer({ servers: t.cluster.natsUrl, name: "broker-takeover" }), Log.layer({ role: "broker" }));
  const broker = Effect.runFork(
    Effect.scoped(runKvBroker({ subjects: t.subjects, sweepMs: 50, leaseTtlMs: LEASE_TTL_MS }).pipe(Effect.andThen(Effect.never))).pipe(Effect.provide(layers)),
  );
  try {
    while (events.length === 0 && Date.now() - openedAt < LEASE_TTL_MS + 1_000) await sleep(20);
    const endedAt = Date.now();
    expect(events).toEqual([expect.objectContaining({ transferId: lease.transferId, requestId: "r-left", state: "expired", reason: "lease_ttl" })]);
    expect(endedAt).toBeGreaterThanOrEqual(lease.expiresAt);
    expect(cancels).toEqual(["r-left"]);
    const stats = await t.brokerStats();
    expect(stats.activeLeases).toEqual([]);
    expect(stats.expired).toBe(1);
  } finally {
    eventSub.unsubscribe();
    cancelSub.unsubscribe();
    await Effect.runPromise(Fiber.interrupt(broker));
  }
});
