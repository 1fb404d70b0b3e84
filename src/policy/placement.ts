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
// `tieBreak` is a non-negative integer (both callers count requests). The simulator calls this once per request,
// so a call sorts nothing and allocates nothing but its answer: what needs sorting (models, id order) is kept per
// worker list (`Layout`), and the answer still depends on the arguments alone —
// test/unit/placement-equivalence.test.ts checks it against the straightforward ranking of every pair.
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

/**
 * What placement keeps per worker list between calls: the served models, and per model its prefill and decode
 * workers (indices into the list) in id order — everything that needs a sort. It is looked up by the list's first
 * worker (the simulator passes the same list every time; the gateway a fresh list of the same member records
 * until a heartbeat replaces them) and used while the list has the same length and every entry the same id, role
 * and model. Everything else (load, capacity, KV, format, host) is read from the list on every call.
 */
interface Layout {
  readonly ids: ReadonlyArray<string>;
  readonly roles: ReadonlyArray<string>;
  readonly models: ReadonlyArray<string>;
  /** Models served, sorted (default string order), without repeats. */
  readonly served: ReadonlyArray<string>;
  readonly pools: Map<string, { readonly prefill: ReadonlyArray<number>; readonly decode: ReadonlyArray<number> }>;
}

const layouts = new WeakMap<WorkerView, Layout>();

const buildLayout = (workers: ReadonlyArray<WorkerView>): Layout => {
  const ids = workers.map((w) => w.id);
  const roles = workers.map((w) => w.role);
  const models = workers.map((w) => w.model);
  const served = [...new Set(models)].sort();
  const pools: Layout["pools"] = new Map();
  // Array.prototype.sort is stable: equal ids keep list order, as when sorting the workers themselves.
  const byId = (a: number, b: number) => ids[a]!.localeCompare(ids[b]!);
  for (const model of served) {
    const pool = (role: string) => workers.map((_, i) => i).filter((i) => roles[i] === role && models[i] === model).sort(byId);
    pools.set(model, { prefill: pool("prefill"), decode: pool("decode") });
  }
  return { ids, roles, models, served, pools };
};

const layoutOf = (workers: ReadonlyArray<WorkerView>): Layout => {
  const key = workers[0]!;
  const known = layouts.get(key);
  if (known !== undefined && known.ids.length === workers.length) {
    const { ids, roles, models } = known;
    let same = true;
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i]!;
      if (w.id !== ids[i] || w.role !== roles[i] || w.model !== models[i]) {
        same = false;
        break;
      }
    }
    if (same) return known;
  }
  const layout = buildLayout(workers);
  layouts.set(key, layout);
  return layout;
};

/** One call's per-worker figures, by position in the prefill and decode pools; grown as needed, shared by calls. */
class Scratch {
  pLoad = new Float64Array(16);
  pCached = new Float64Array(16);
  pRot = new Int32Array(16);
  pFree = new Uint8Array(16);
  dLoad = new Float64Array(16);
  dRot = new Int32Array(16);
  dFree = new Uint8Array(16);
  dFits = new Uint8Array(16);
  /** Set while a call uses it (a re-entrant call, from `translationCost`, gets its own). */
  busy = false;
  fit(np: number, nd: number): this {
    if (np > this.pLoad.length) {
      this.pLoad = new Float64Array(np);
      this.pCached = new Float64Array(np);
      this.pRot = new Int32Array(np);
      this.pFree = new Uint8Array(np);
    }
    if (nd > this.dLoad.length) {
      this.dLoad = new Float64Array(nd);
      this.dRot = new Int32Array(nd);
      this.dFree = new Uint8Array(nd);
      this.dFits = new Uint8Array(nd);
    }
    return this;
  }
}

const scratch = new Scratch();

const formats = (workers: ReadonlyArray<WorkerView>, pool: ReadonlyArray<number>) => [...new Set(pool.map((i) => workers[i]!.kvFormat))].sort();

/**
 * The pair by the order in the header. Written for the simulator, which calls it once per request: no sort,
 * closure or array per call. Each pool is ranked by (load, position after rotating the id order by
 * `tieBreak`); the prefill order puts the longest cached prefix (under `affinityMaxLoad`) first, then that
 * rank. Every (prefill, decode) pair then has a distinct key (fits, translation, prefill order, link, decode
 * rank), so one pass keeping the smallest finds the same pair as ranking them all.
 */
export const placeRequest = (
  workers: ReadonlyArray<WorkerView>,
  assigned: ReadonlyMap<string, number>,
  request: PlacementRequest,
  tieBreak: number,
  policy: PlacementPolicy,
): PickResult => {
  if (workers.length === 0) {
    if (request.model === undefined) return { _tag: "NoWorkers", role: "prefill", model: "(any)" };
    return { _tag: "UnknownModel", model: request.model, served: [] };
  }
  const layout = layoutOf(workers);
  const wanted = request.model ?? layout.served[0];
  if (wanted === undefined) return { _tag: "NoWorkers", role: "prefill", model: "(any)" };
  const pool = layout.pools.get(wanted);
  if (pool === undefined) return { _tag: "UnknownModel", model: wanted, served: layout.served.slice() };
  const { prefill, decode } = pool;
  const np = prefill.length;
  const nd = decode.length;
  if (np === 0) return { _tag: "NoWorkers", role: "prefill", model: wanted };
  if (nd === 0) return { _tag: "NoWorkers", role: "decode", model: wanted };
  const own = scratch.busy ? new Scratch().fit(np, nd) : scratch.fit(np, nd);
  own.busy = true;
  try {
    const { pLoad, pCached, pRot, pFree, dLoad, dRot, dFree, dFits } = own;
    const { maxLoad, translationCost } = policy;
    const affinityMaxLoad = policy.affinityMaxLoad ?? DEFAULT_AFFINITY_MAX_LOAD;
    const cachedBlocks = request.cachedBlocks;
    const need = Math.max(1, request.kvTokens ?? 1);
    const anyAssigned = assigned.size > 0; // the simulator's view is exact: it assigns nothing beyond it
    // Position in the pool's id order rotated by tieBreak: pool[(position + tieBreak) % n] is the worker.
    const pShift = tieBreak % np;
    const dShift = tieBreak % nd;
    for (let k = 0; k < np; k++) {
      const w = workers[prefill[k]!]!;
      const load = Math.max(w.inFlight, anyAssigned ? assigned.get(w.id) ?? 0 : 0) / Math.max(1, w.capacity);
      pLoad[k] = load;
      pRot[k] = k >= pShift ? k - pShift : k - pShift + np;
      pFree[k] = load < maxLoad ? 1 : 0;
      pCached[k] = load < affinityMaxLoad ? cachedBlocks?.get(w.id) ?? 0 : 0;
    }
    for (let k = 0; k < nd; k++) {
      const w = workers[decode[k]!]!;
      const inUse = anyAssigned ? assigned.get(w.id) ?? 0 : 0;
      const load = Math.max(w.inFlight, inUse) / Math.max(1, w.capacity);
      dLoad[k] = load;
      dRot[k] = k >= dShift ? k - dShift : k - dShift + nd;
      dFree[k] = load < maxLoad ? 1 : 0;
      dFits[k] = freeKvTokens(w, inUse) >= need ? 1 : 0;
    }
    let compatible = false;
    let bestP = -1;
    let bestD = -1;
    let bestFits = 0;
    let bestTranslation = 0;
    let bestLink = 0;
    for (let i = 0; i < np; i++) {
      const p = workers[prefill[i]!]!;
      if (pFree[i] === 0) {
        // Only the check that some pair of the model can exchange KV at all (NoCompatiblePair) needs it.
        if (compatible) continue;
        for (let j = 0; j < nd && !compatible; j++) compatible = translationCost(p.kvFormat, workers[decode[j]!]!.kvFormat) !== undefined;
        continue;
      }
      for (let j = 0; j < nd; j++) {
        if (dFree[j] === 0) {
          if (!compatible) compatible = translationCost(p.kvFormat, workers[decode[j]!]!.kvFormat) !== undefined;
          continue;
        }
        const d = workers[decode[j]!]!;
        const translation = translationCost(p.kvFormat, d.kvFormat);
        if (translation === undefined) continue;
        compatible = true;
        const fits = dFits[j]!;
        const link = p.host !== undefined && p.host === d.host ? 0 : d.kvTcp !== undefined ? 1 : 2;
        if (bestP >= 0) {
          // Keys compare element by element: the first unequal one decides.
          if (fits !== bestFits) {
            if (fits < bestFits) continue;
          } else if (translation !== bestTranslation) {
            if (!(translation - bestTranslation < 0)) continue;
          } else if (i !== bestP) {
            // Prefill order: more cached blocks, then lower load, then earlier rotated position.
            const c = pCached[i]!;
            const bc = pCached[bestP]!;
            if (c !== bc) {
              if (c < bc) continue;
            } else if (pLoad[i] !== pLoad[bestP]) {
              if (pLoad[i]! > pLoad[bestP]!) continue;
            } else if (pRot[i]! > pRot[bestP]!) continue;
          } else if (link !== bestLink) {
            if (link > bestLink) continue;
          } else if (dLoad[j] !== dLoad[bestD]) {
            if (dLoad[j]! > dLoad[bestD]!) continue;
          } else if (dRot[j]! > dRot[bestD]!) continue;
        }
        bestP = i;
        bestD = j;
        bestFits = fits;
        bestTranslation = translation;
        bestLink = link;
      }
    }
    if (!compatible) return { _tag: "NoCompatiblePair", model: wanted, prefillFormats: formats(workers, prefill), decodeFormats: formats(workers, decode) };
    if (bestP < 0) return { _tag: "Saturated", model: wanted };
    return { _tag: "Picked", prefill: workers[prefill[bestP]!]!, decode: workers[decode[bestD]!]! };
  } finally {
    own.busy = false;
  }
};

/** Characters per token assumed for a prompt the caller has not tokenized (English text, BPE vocabularies). */
const CHARS_PER_TOKEN = 4;

/** KV tokens a request will hold at its decode worker, from its prompt text (estimated) and max_tokens. */
export const kvTokensEstimate = (prompt: string, maxTokens: number) => Math.ceil(prompt.length / CHARS_PER_TOKEN) + maxTokens;
