// Membership: each worker keeps one record in a NATS KV bucket, re-put every heartbeat; the bucket's TTL
// removes records of workers that died without saying goodbye. Readers keep a live view from a watch and
// drop records whose last heartbeat is older than two intervals, so a dead worker leaves routing fast.
import { Clock, Effect, Result, Scope } from "effect";
import { Events, type KvEntry, type QueuedIterator, StorageType } from "nats";
import { decodeMessageResult, encodeMessage, MemberRecord, type TandemError, unavailable } from "../protocol/index.ts";
import { NatsClient } from "./nats-client.ts";
import { openResilientBucket } from "./resilient-bucket.ts";

/** A record older than this many heartbeat intervals is treated as dead. */
export const MISSED_HEARTBEATS_ALLOWED = 2;

const openBucket = (bucket: string, heartbeatMs: number) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    return yield* Effect.tryPromise({
      try: () => openResilientBucket(connection, bucket, { history: 1, ttl: heartbeatMs * 5, storage: StorageType.Memory }),
      catch: (cause) =>
        unavailable("jetstream_unavailable", `cannot open KV bucket ${bucket} (is JetStream enabled?): ${String(cause)}`),
    });
  });

export type MemberDraft = Omit<MemberRecord, "_tag" | "v" | "heartbeatAt" | "heartbeatMs">;

/** Registers a worker and heartbeats until the scope closes; then deletes the record. */
export const registerMember = (bucket: string, heartbeatMs: number, current: () => MemberDraft) =>
  Effect.gen(function* () {
    const kv = yield* openBucket(bucket, heartbeatMs);
    const beat = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      const draft = current();
      const record = encodeMessage(MemberRecord, { ...draft, _tag: "MemberRecord", heartbeatAt: now, heartbeatMs });
      // A failed beat (NATS restarting) is simply missed; the next one re-creates the bucket if it was lost.
      yield* Effect.promise(() => kv.put(draft.id, record).catch(() => undefined));
    });
    yield* beat;
    yield* Effect.forkScoped(Effect.forever(Effect.sleep(heartbeatMs).pipe(Effect.andThen(beat))));
    yield* Effect.addFinalizer(() => Effect.promise(() => kv.delete(current().id).catch(() => undefined)));
  });

export interface MembershipView {
  /** Live members right now (heartbeat within MISSED_HEARTBEATS_ALLOWED intervals). */
  readonly live: Effect.Effect<ReadonlyArray<MemberRecord>>;
  /** When this view last started from nothing (the first watch, and each re-watch after a reconnect), Clock ms. */
  readonly since: Effect.Effect<number>;
}

const decodeRecord = decodeMessageResult(MemberRecord);

/** Watches the membership bucket for as long as the scope lives. */
export const watchMembership = (
  bucket: string,
  heartbeatMs: number,
): Effect.Effect<MembershipView, TandemError, NatsClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const kv = yield* openBucket(bucket, heartbeatMs);
    const members = new Map<string, MemberRecord>();
    /** Follows one watch until it ends (the stream went away with a NATS restart) or is stopped. */
    const follow = async (watch: QueuedIterator<KvEntry>) => {
      for await (const entry of watch) {
        if (entry.operation !== "PUT") {
          members.delete(entry.key);
          continue;
        }
        const decoded = decodeRecord(entry.value);
        if (Result.isSuccess(decoded)) members.set(entry.key, decoded.success);
      }
    };
    let since = yield* Clock.currentTimeMillis;
    let watch = yield* Effect.promise(async () => (await kv.current()).watch());
    void follow(watch);
    // After a reconnect the server may have lost the bucket (memory storage): watch it afresh. Records missed in
    // between are not lost for long: every worker re-puts its record each heartbeat.
    const rewatch = Effect.promise(async () => {
      for await (const status of connection.status()) {
        if (status.type !== Events.Reconnect) continue;
        since = Date.now();
        watch.stop();
        // JetStream may take a moment to be ready after the server comes back.
        for (let tries = 0; tries < 20; tries++) {
          const fresh = await kv.reopen().then((b) => b.watch()).catch(() => undefined);
          if (fresh !== undefined) {
            watch = fresh;
            void follow(watch);
            break;
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    });
    yield* Effect.forkScoped(rewatch);
    yield* Effect.addFinalizer(() => Effect.sync(() => watch.stop()));
    const live = Clock.currentTimeMillis.pipe(
      Effect.map((now) =>
        [...members.values()].filter((m) => now - m.heartbeatAt <= m.heartbeatMs * MISSED_HEARTBEATS_ALLOWED)
      ),
    );
    return { live, since: Effect.sync(() => since) };
  });
