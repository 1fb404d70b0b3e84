// The spill tier: prefixes a prefill engine evicts go to a JetStream Object Store bucket, named by their KV format
// and block hash chain, and any engine of the same format restores them instead of evaluating them again. Each
// process follows the bucket's listing (a watch), so finding the longest stored prefix of a prompt is a lookup in
// memory; only a hit reads from NATS. Uploads run off the prompt's path. Objects age out after `ttlMs` (the
// bucket's max_age); one that has aged out is a miss, and one that cannot be stored is simply not spilled.
import { Effect } from "effect";
import { nanos, type ObjectInfo, StorageType } from "nats";
import type { PrefixSpill } from "../engine/llama-cpp.ts";
import { unavailable } from "../protocol/index.ts";
import { NatsClient } from "./nats-client.ts";

/** How long a spilled prefix is kept. */
export const DEFAULT_PREFIX_SPILL_TTL_MS = 60 * 60 * 1_000;

export interface PrefixSpillCounters {
  /** Prefixes this engine uploaded, and uploads that failed. */
  readonly stored: number;
  readonly storeFailures: number;
  /** Prefixes this engine restored from the store, and their blocks. */
  readonly restored: number;
  readonly restoredBlocks: number;
  /** Stored prefixes this process knows of. */
  readonly known: number;
}

export interface PrefixSpillStore extends PrefixSpill {
  readonly counters: () => PrefixSpillCounters;
}

const hex = (n: number) => n.toString(16).padStart(8, "0");
const objectName = (kvFormat: string, chain: ReadonlyArray<number>) => `${kvFormat}#${chain.length}#${hex(chain.at(-1)!)}`;

/** Opens (creating when missing) the spill bucket, for as long as the scope lives. */
export const openPrefixSpill = (bucket: string, ttlMs = DEFAULT_PREFIX_SPILL_TTL_MS) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const scope = yield* Effect.scope;
    const store = yield* Effect.tryPromise({
      try: () => connection.jetstream().views.os(bucket, { storage: StorageType.File, ttl: nanos(ttlMs) }),
      catch: (cause) => unavailable("jetstream_unavailable", `cannot open object store ${bucket}: ${String(cause)}`),
    });
    const counters = { stored: 0, storeFailures: 0, restored: 0, restoredBlocks: 0 };
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
    const learn = (info: ObjectInfo) => {
      const kvFormat = info.metadata?.format;
      if (kvFormat === undefined) return;
      if (info.deleted) forget(info.name);
      else remember(info.name, kvFormat, JSON.parse(info.metadata?.chain ?? "[]") as number[]);
    };
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
          onSuccess: () => void counters.stored++,
        }),
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
      counters: () => ({ ...counters, known: chains.size }),
    };
    return spill;
  });
