// The KV broker owns every transfer: it allocates the id and a lease, tells the receiver to get ready, and ends
// the lease when the receiver confirms, either side aborts, or the TTL runs out. Every end is published on
// events.transfer. Leases are mirrored to a NATS KV bucket whose entries age out after the lease TTL, so a
// broker that dies leaves nothing there for longer than one TTL; a broker that starts takes over the leases a
// predecessor left in the bucket and ends them like its own.
import { Clock, Effect, Queue, Result, Schema } from "effect";
import type { Msg } from "nats";
import { makeActor } from "../../src/actor/actor.ts";
import {
  Ack,
  BrokerStats,
  BrokerStatsQuery,
  CancelCommand,
  decodeMessage,
  KvExpect,
  type LeaseRecord,
  LeaseRecord as LeaseRecordSchema,
  requestKey,
  type Subjects,
  TandemError,
  TransferAbort,
  TransferComplete,
  TransferEvent,
  TransferOpen,
  TransferOpened,
  type TransferState,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { DEFAULT_CHUNK_BYTES, chunkSizeFor } from "../../src/kv/chunking.ts";
import { openLeaseBucket } from "./lease-bucket.ts";

export interface KvBrokerConfig {
  readonly subjects: Subjects;
  readonly chunkBytes?: number;
  /** How often expired leases are swept. */
  readonly sweepMs: number;
  /**
   * The longest lease the broker grants (a longer `ttlMs` asked for is cut to it) and the lease bucket's max_age
   * (`TANDEM_LEASE_TTL_MS` for `tandem broker`).
   */
  readonly leaseTtlMs: number;
}

const decodeOpen = decodeMessage(TransferOpen);
const decodeComplete = decodeMessage(TransferComplete);
const decodeAbort = decodeMessage(TransferAbort);
const decodeStats = decodeMessage(BrokerStatsQuery);
const encodeLease = Schema.encodeSync(LeaseRecordSchema);
const decodeLease = Schema.decodeUnknownResult(LeaseRecordSchema);

export const runKvBroker = (config: KvBrokerConfig) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { connection, maxPayload } = yield* NatsClient;
    const log = yield* Log;
    const chunkBytes = chunkSizeFor(maxPayload, config.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    const { leaseTtlMs } = config;
    const leaseBucket = yield* Effect.tryPromise({
      try: () => openLeaseBucket(connection, subjects.leasesBucket, leaseTtlMs),
      catch: (cause) => unavailable("jetstream_unavailable", `cannot open ${subjects.leasesBucket}: ${String(cause)}`),
    });
    // The lease table lives here; the KV bucket mirrors it for operators and a successor. Mirror writes go through one
    // ordered writer fiber so they never sit on a request's path and a delete never overtakes its put.
    const mirror = yield* Queue.bounded<() => Promise<unknown>>(4096);
    yield* Effect.forkScoped(
      Effect.forever(Queue.take(mirror).pipe(Effect.flatMap((write) => Effect.promise(() => write().catch(() => undefined))))),
    );
    const mirrorWrite = (write: () => Promise<unknown>) =>
      Effect.sync(() => {
        if (!Queue.offerUnsafe(mirror, write)) log.warn("lease mirror backlog full; a bucket write was skipped");
      });
    const leases = new Map<string, LeaseRecord>();
    /** requestKey → transferId, so a transfer can be aborted by the request it belongs to. */
    const byRequest = new Map<string, string>();
    // Leases a broker before this one left in the bucket (it died within the last TTL) are taken over, so each
    // still ends with an event and, unless completed, a cancel to its receiver.
    const inherited = yield* Effect.tryPromise(async () => {
      const kv = await leaseBucket.current();
      const found: LeaseRecord[] = [];
      for await (const key of await kv.keys()) {
        const entry = await kv.get(key);
        const lease = entry?.operation === "PUT" ? decodeLease(entry.json()) : undefined;
        if (lease !== undefined && Result.isSuccess(lease)) found.push(lease.success);
      }
      return found;
    }).pipe(Effect.catch(() => Effect.succeed([] as LeaseRecord[])));
    for (const lease of inherited) {
      leases.set(lease.transferId, lease);
      byRequest.set(requestKey(lease.requestId, lease.attempt), lease.transferId);
    }
    if (inherited.length > 0) log.info({ leases: inherited.length }, "took over leases left by an earlier broker");
    const counters = { opened: 0, completed: 0, aborted: 0, expired: 0, bytesMoved: 0 };
    let nextId = 0;
    // Ids only need to be unique across broker restarts: the start time and pid make them so.
    const idPrefix = `${(yield* Clock.currentTimeMillis).toString(36)}${process.pid.toString(36)}`;

    const end = (transferId: string, state: TransferState, reason: string, bytes: number) =>
      Effect.gen(function* () {
        const lease = leases.get(transferId);
        if (lease === undefined) return false;
        leases.delete(transferId);
        byRequest.delete(requestKey(lease.requestId, lease.attempt));
        const { requestId, attempt } = lease;
        if (state !== "completed") {
          // The receiver may be holding a subscription or bytes for this transfer: tell it to drop them.
          yield* tell(subjects.worker(lease.receiver, "cancel"), CancelCommand, { _tag: "CancelCommand", requestId, attempt }).pipe(
            Effect.ignore,
          );
        }
        if (state === "completed") {
          counters.completed++;
          counters.bytesMoved += bytes;
        } else counters[state]++;
        yield* mirrorWrite(() => leaseBucket.delete(transferId));
        yield* tell(subjects.events("transfer"), TransferEvent, {
          _tag: "TransferEvent",
          transferId,
          requestId,
          attempt,
          state,
          reason,
          bytes,
        }).pipe(Effect.ignore);
        return true;
      });

    const onOpen = (msg: Msg) =>
      Effect.gen(function* () {
        const open = yield* decodeOpen(msg.data);
        const now = yield* Clock.currentTimeMillis;
        const transferId = `t${idPrefix}${(nextId++).toString(36)}`;
        const ttlMs = Math.min(open.ttlMs, leaseTtlMs);
        const lease: LeaseRecord = {
          transferId,
          requestId: open.requestId,
          attempt: open.attempt,
          sender: open.sender,
          receiver: open.receiver,
          openedAt: now,
          expiresAt: now + ttlMs,
        };
        const key = requestKey(open.requestId, open.attempt);
        const previous = byRequest.get(key);
        if (previous !== undefined) yield* end(previous, "aborted", "superseded", 0);
        leases.set(transferId, lease);
        byRequest.set(key, transferId);
        counters.opened++;
        yield* mirrorWrite(() => leaseBucket.put(transferId, JSON.stringify(encodeLease(lease))));
        // The receiver subscribes and grants credit on its own; the sender waits for that credit, so nothing
        // here has to wait for the receiver. A receiver that is gone shows up as a stalled sender (abort).
        yield* tell(subjects.worker(open.receiver, "kv-expect"), KvExpect, {
          _tag: "KvExpect",
          transferId,
          requestId: open.requestId,
          attempt: open.attempt,
          sender: open.sender,
          ttlMs,
        });
        yield* respond(msg, TransferOpened, { _tag: "TransferOpened", transferId, chunkBytes, leaseExpiresAt: lease.expiresAt });
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const onComplete = (msg: Msg) =>
      decodeComplete(msg.data).pipe(
        Effect.flatMap((done) => end(done.transferId, "completed", "received", done.bytes)),
        Effect.andThen(respond(msg, Ack, { _tag: "Ack" })),
        Effect.catch((error: TandemError) => respondFailure(msg, error)),
      );

    const onAbort = (msg: Msg) =>
      decodeAbort(msg.data).pipe(
        Effect.flatMap((abort) => {
          const transferId = byRequest.get(requestKey(abort.requestId, abort.attempt));
          return transferId === undefined ? Effect.succeed(false) : end(transferId, "aborted", abort.reason, 0);
        }),
        Effect.andThen(respond(msg, Ack, { _tag: "Ack" })),
        Effect.catch((error: TandemError) => respondFailure(msg, error)),
      );

    const onStats = (msg: Msg) =>
      decodeStats(msg.data).pipe(
        Effect.andThen(respond(msg, BrokerStats, { _tag: "BrokerStats", activeLeases: [...leases.values()], ...counters })),
        Effect.catch((error: TandemError) => respondFailure(msg, error)),
      );

    const sweep = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      for (const lease of [...leases.values()]) {
        if (lease.expiresAt <= now) {
          yield* end(lease.transferId, "expired", "lease_ttl", 0);
          log.warn({ transferId: lease.transferId, receiver: lease.receiver }, "lease expired");
        }
      }
    });
    yield* Effect.forkScoped(Effect.forever(Effect.sleep(config.sweepMs).pipe(Effect.andThen(sweep))));

    const actor = yield* makeActor({
      name: "tandem-kv-broker",
      version: "0.1.0",
      description: "Tandem KV broker: transfers, leases",
      metadata: { cluster: subjects.cluster },
    });
    const queue = "tandem-kv-broker";
    yield* actor.mailbox({ endpoint: "open", subject: subjects.broker("open"), queue, capacity: 1024, concurrency: 64, handle: onOpen });
    yield* actor.mailbox({ endpoint: "complete", subject: subjects.broker("complete"), queue, capacity: 1024, concurrency: 4, handle: onComplete });
    yield* actor.mailbox({ endpoint: "abort", subject: subjects.broker("abort"), queue, capacity: 1024, concurrency: 4, handle: onAbort });
    yield* actor.mailbox({ endpoint: "stats", subject: subjects.broker("stats"), queue, capacity: 64, concurrency: 1, handle: onStats });
    log.info({ chunkBytes }, "kv broker ready");
  });

