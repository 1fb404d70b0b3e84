// Placement: the (prefill, decode) pair that serves one request, from the live cluster view. Pure — no NATS, no
// clocks — so the gateway and the simulator run the same code (`pickLeastLoaded` is this with nothing but loads
// and formats known).
//
// Order of preference, each a tie-breaker for the one before:
//   1. the decode worker has room for the request's KV (free KV tokens, as reported, less what this caller
//      has placed there since; a worker that does not report KV is taken to have room);
//   2. the cheaper KV translation between the two formats (0: none; see `translationCost`);
//   3. the prefill worker's rank: the one holding the longest cached prefix of the prompt when it is under
//      `affinityMaxLoad`, then by load (ties rotated by `tieBreak`);
//   4. the cheaper link between the two (same host, then a direct TCP listener, then through NATS);
//   5. the decode worker's load.
// Workers at `maxLoad` or above take nothing; when that leaves no pair the answer is `Saturated`.
import type { PickResult, WorkerView } from "./least-loaded.ts";

export interface PlacementRequest {
  /** Model to serve; undefined: the first served model. */
  readonly model: string | undefined;
  /** KV tokens the request will hold at its decode worker (prompt and answer). */
  readonly kvTokens?: number;
  /** Leading prefix blocks of this prompt each prefill worker holds, by worker id (from the prefix index). */
  readonly cachedBlocks?: ReadonlyMap<string, number>;
}

export interface PlacementPolicy {
  /** Load (in flight over capacity) from which a worker takes nothing more. */
  readonly maxLoad: number;
  /** Cost of making KV of format `from` usable by an engine of format `to`: 0 as it is; undefined: no path. */
  readonly translationCost: (from: string, to: string) => number | undefined;
  /** A prefill worker holding a cached prefix of the prompt is preferred while its load is below this. */
  readonly affinityMaxLoad?: number;
}

/** Prefix affinity yields to load once the holder has as many requests in flight as it has sequences. */
export const DEFAULT_AFFINITY_MAX_LOAD = 1;

/** 0: both on one host; 1: across hosts over the decode worker's direct TCP listener; 2: across hosts through NATS. */
export const linkCost = (prefill: WorkerView, decode: WorkerView): number =>
  prefill.host !== undefined && prefill.host === decode.host ? 0 : decode.kvTcp !== undefined ? 1 : 2;

/**
 * KV tokens a decode worker can still take from this caller: its reported capacity less the larger of what it
 * reported in use and what this caller has placed there (`assigned` requests, each holding one sequence's share
 * of the capacity). Infinite when the worker does not report KV.
 */
export const freeKvTokens = (worker: WorkerView, assigned: number): number => {
  const { kvCapacityTokens, kvFreeTokens } = worker;
  if (kvCapacityTokens === undefined || kvFreeTokens === undefined) return Number.POSITIVE_INFINITY;
  const perRequest = kvCapacityTokens / Math.max(1, worker.capacity);
  return kvCapacityTokens - Math.max(kvCapacityTokens - kvFreeTokens, assigned * perRequest);
};

const compareTuples = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
};

export const placeRequest = (
  workers: ReadonlyArray<WorkerView>,
  assigned: ReadonlyMap<string, number>,
  request: PlacementRequest,
  tieBreak: number,
  policy: PlacementPolicy,
): PickResult => {
  const served = [...new Set(workers.map((w) => w.model))].sort();
  const wanted = request.model ?? served[0];
  if (wanted === undefined) return { _tag: "NoWorkers", role: "prefill", model: request.model ?? "(any)" };
  if (!served.includes(wanted)) return { _tag: "UnknownModel", model: wanted, served };
  const load = (w: WorkerView) => Math.max(w.inFlight, assigned.get(w.id) ?? 0) / Math.max(1, w.capacity);
  const ranked = (role: "prefill" | "decode") => {
    const pool = workers.filter((w) => w.role === role && w.model === wanted).sort((a, b) => a.id.localeCompare(b.id));
    const rotated = pool.map((_, i) => pool[(i + tieBreak) % pool.length]!);
    return rotated.sort((a, b) => load(a) - load(b));
  };
  const prefills = ranked("prefill");
  const decodes = ranked("decode");
  if (prefills.length === 0) return { _tag: "NoWorkers", role: "prefill", model: wanted };
  if (decodes.length === 0) return { _tag: "NoWorkers", role: "decode", model: wanted };
  const cost = (p: WorkerView, d: WorkerView) => policy.translationCost(p.kvFormat, d.kvFormat);
  if (!prefills.some((p) => decodes.some((d) => cost(p, d) !== undefined))) {
    const formats = (pool: ReadonlyArray<WorkerView>) => [...new Set(pool.map((w) => w.kvFormat))].sort();
    return { _tag: "NoCompatiblePair", model: wanted, prefillFormats: formats(prefills), decodeFormats: formats(decodes) };
  }
  const free = (w: WorkerView) => load(w) < policy.maxLoad;
  // Prefix affinity: the holder of the longest cached prefix goes first while it is not overloaded.
  const affinityMaxLoad = policy.affinityMaxLoad ?? DEFAULT_AFFINITY_MAX_LOAD;
  const cached = (w: WorkerView) => (load(w) < affinityMaxLoad ? request.cachedBlocks?.get(w.id) ?? 0 : 0);
  const prefillOrder = prefills.filter(free).map((w, rank) => ({ w, rank })).sort((a, b) => cached(b.w) - cached(a.w) || a.rank - b.rank);
  const need = Math.max(1, request.kvTokens ?? 1);
  let best: { readonly key: ReadonlyArray<number>; readonly prefill: WorkerView; readonly decode: WorkerView } | undefined;
  prefillOrder.forEach(({ w: prefill }, prefillRank) => {
    decodes.forEach((decode, decodeRank) => {
      const translation = cost(prefill, decode);
      if (translation === undefined || !free(decode)) return;
      const fits = freeKvTokens(decode, assigned.get(decode.id) ?? 0) >= need ? 0 : 1;
      const key = [fits, translation, prefillRank, linkCost(prefill, decode), decodeRank];
      if (best === undefined || compareTuples(key, best.key) < 0) best = { key, prefill, decode };
    });
  });
  return best === undefined ? { _tag: "Saturated", model: wanted } : { _tag: "Picked", prefill: best.prefill, decode: best.decode };
};

/** Characters per token assumed for a prompt the caller has not tokenized (English text, BPE vocabularies). */
const CHARS_PER_TOKEN = 4;

/** KV tokens a request will hold at its decode worker, from its prompt text (estimated) and max_tokens. */
export const kvTokensEstimate = (prompt: string, maxTokens: number) => Math.ceil(prompt.length / CHARS_PER_TOKEN) + maxTokens;
