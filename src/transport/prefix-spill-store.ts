// The spill tier: prefixes a prefill engine evicts go to a JetStream Object Store bucket, named by their KV format
// and block hash chain, and any engine of the same format restores them instead of evaluating them again. Each
// process follows the bucket's listing (a watch), so finding the longest stored prefix of a prompt is a lookup in
// memory; only a hit reads from NATS. Uploads run off the prompt's path. Objects age out after `ttlMs` (the
// bucket's max_age); one that has aged out is a miss, and one that cannot be stored is simply not spilled.
// The bucket's size is capped by eviction, not by the bucket: an Object Store with max_bytes would discard a
// stream's oldest messages, which are chunks of objects still listed. After each upload, the uploading process
// deletes the oldest objects (by upload time, from the listing every process follows) until the listing fits
// in `maxBytes`. Two processes uploading at once may each evict, so the bucket can drop below the cap; a
// deleted object is a miss, like an aged-out one.
import { Effect } from "effect";
import { nanos, type ObjectInfo, StorageType } from "nats";
import type { PrefixSpill } from "../engine/llama-cpp.ts";
import { unavailable } from "../protocol/index.ts";
import { NatsClient } from "./nats-client.ts";

/** How long a spilled prefix is kept. */
export const DEFAULT_PREFIX_SPILL_TTL_MS = 60 * 60 * 1_000;
/** How many bytes of spilled prefixes the bucket holds before the oldest are evicted. */
export const DEFAULT_PREFIX_SPILL_MAX_BYTES = 1024 * 1024 * 1024;

export interface PrefixSpillOptions {
  readonly ttlMs?: number;
  readonly maxBytes?: number;
}

export interface PrefixSpillCounters {
  /** Prefixes this engine uploaded, and uploads that failed. */
  readonly stored: number;
  readonly storeFailures: number;
  /** Prefixes this engine restored from the store, and their blocks. */
  readonly restored: number;
  readonly restoredBlocks: number;
  /** Stored prefixes this process knows of, and their bytes. */
  readonly known: number;
  readonly knownBytes: number;
  /** Prefixes this process deleted to keep the bucket under its size cap. */
  readonly evicted: number;
}

export interface PrefixSpillStore extends PrefixSpill {
  readonly counters: () => PrefixSpillCounters;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
const objectName = (kvFormat: string, chain: ReadonlyArray<number>) => `${kvFormat}#${chain.length}#${hex(chain.at(-1)!)}`;

/** Opens (creating when missing) the spill bucket, for as long as the scope lives. */
export const openPrefixSpill = (bucket: string, { ttlMs = DEFAULT_PREFIX_SPILL_TTL_MS, maxBytes = DEFAULT_PREFIX_SPILL_MAX_BYTES }: PrefixSpillOptions = {}) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const scope = yield* Effect.scope;
    const store = yield* Effect.tryPromise({
      try: () => connection.jetstream().views.os(bucket, { storage: StorageType.File, ttl: nanos(ttlMs) }),
      catch: (cause) => unavailable("jetstream_unavailable", `cannot open object store ${bucket}: ${String(cause)}`),
    });
    const counters = { stored: 0, storeFailures: 0, restored: 0, restoredBlocks: 0, evicted: 0 };
    /** Size and upload time of every stored object the listing (or an upload here) has reported. */
    const stored = new Map<string, { readonly bytes: number; readonly at: number }>();
    let storedBytes = 0;
    /**
     * Stored chains by object name, and object name by `${format}|${block index}:${block hash}` (a block's hash in a
     * chain names the whole prefix up to it).
     */
    const chains = new Map<string, { readonly kvFormat: string; readonly chain: ReadonlyArray<number> }>();
    const byBlock = new Map<string, string>();
    const blockKey = (kvFormat: string, i: number, hash: number) => `${kvFormat}|${i}:${hash}`;
    const forget = (name: string) => {
      const entry = chains.get(name);
      entry?.chain.forEach((hash, i) => {
        const key = blockKey(entry.kvFormat, i, hash);
        if (byBlock.get(key) === name) byBlock.delete(key);
      });
      chains.delete(name);
    };
    const remember = (name: string, kvFormat: string, chain: ReadonlyArray<number>) => {
      chains.set(name, { kvFormat, chain });
      chain.forEach((hash, i) => byBlock.set(blockKey(kvFormat, i, hash), name));
    };
    const unlist = (name: string) => {
      storedBytes -= stored.get(name)?.bytes ?? 0;
      stored.delete(name);
    };
    /** Records an object's size and upload time as its listing (or upload) reports them. */
    const list = (info: ObjectInfo) => {
      unlist(info.name);
      stored.set(info.name, { bytes: info.size, at: Date.parse(info.mtime) });
      storedBytes += info.size;
    };
    const learn = (info: ObjectInfo) => {
      const kvFormat = info.metadata?.format;
      if (kvFormat === undefined) return;
      if (info.deleted) {
        unlist(info.name);
        forget(info.name);
      } else {
        remember(info.name, kvFormat, JSON.parse(info.metadata?.chain ?? "[]") as number[]);
        list(info);
      }
    };
    /** Deletes the oldest objects until the listing fits in `maxBytes` (never `keep`, the one just stored). */
    const evictOver = (keep: string) =>
      Effect.gen(function* () {
        if (storedBytes <= maxBytes) return;
        const oldestFirst = [...stored.entries()].filter(([name]) => name !== keep).sort((a, b) => a[1].at - b[1].at);
        for (const [name] of oldestFirst) {
          if (storedBytes <= maxBytes) return;
          unlist(name);
          forget(name);
          const deleted = yield* Effect.tryPromise(() => store.delete(name)).pipe(Effect.match({ onFailure: () => false, onSuccess: () => true }));
          if (deleted) counters.evicted++;
        }
      });
    const watch = yield* Effect.tryPromise({
      try: () => store.watch({ includeHistory: true }),
      catch: (cause) => unavailable("jetstream_unavailable", `cannot watch object store ${bucket}: ${String(cause)}`),
    });
    yield* Effect.forkScoped(Effect.promise(async () => {
      for await (const info of watch) if (info !== null) learn(info);
    }));
    yield* Effect.addFinalizer(() => Effect.sync(() => watch.stop()));

    const upload = (name: string, kvFormat: string, chain: ReadonlyArray<number>, state: Uint8Array) =>
      Effect.tryPromise(() => store.putBlob({ name, metadata: { format: kvFormat, chain: JSON.stringify(chain) } }, state)).pipe(
        Effect.match({
          onFailure: () => {
            counters.storeFailures++;
            forget(name);
          },
          onSuccess: (info) => {
            counters.stored++;
            // Counted now, so the cap holds without waiting for the watch to report this upload.
            list(info);
          },
        }),
        Effect.andThen(evictOver(name)),
      );

    const spill: PrefixSpillStore = {
      store: (kvFormat, chain, state) =>
        Effect.suspend(() => {
          const name = chain.length === 0 ? undefined : objectName(kvFormat, chain);
          if (name === undefined || chains.has(name)) return Effect.void;
          // Known at once, so the same prefix evicted again before the watch reports it is not uploaded twice.
          remember(name, kvFormat, chain);
          return Effect.forkIn(upload(name, kvFormat, chain, state), scope).pipe(Effect.asVoid);
        }),
      fetch: (kvFormat, chain, moreThan) =>
        Effect.gen(function* () {
          for (let i = chain.length - 1; i >= moreThan; i--) {
            const name = byBlock.get(blockKey(kvFormat, i, chain[i]!));
            if (name === undefined) continue;
            const state = yield* Effect.tryPromise(() => store.getBlob(name)).pipe(Effect.orElseSucceed(() => null));
            if (state === null) {
              forget(name);
              continue;
            }
            counters.restored++;
            counters.restoredBlocks += i + 1;
            return { blocks: i + 1, state };
          }
          return undefined;
        }),
      counters: () => ({ ...counters, known: chains.size, knownBytes: storedBytes }),
    };
    return spill;
  });
