// placeRequest is written for speed (no sort, closure or array per call; what needs sorting is kept per worker
// list). This checks it against the straightforward ranking it replaced, transcribed below, over random worker
// sets: roles, models, KV formats (some with no translation between them), loads, capacities, reported KV or none,
// hosts and TCP listeners, prefix caches, assignments, tie-breaks and load limits — and over a sequence of calls
// on one worker list that changes between them (loads, KV, and ids, roles, models or the list's length), since
// what it keeps per list must follow such changes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PickResult, WorkerView } from "../../src/policy/least-loaded.ts";
import { type PlacementPolicy, type PlacementRequest, placeRequest } from "../../src/policy/placement.ts";

// --- the reference: placeRequest as it was, ranking every pair ---

const referenceLinkCost = (prefill: WorkerView, decode: WorkerView): number =>
  prefill.host !== undefined && prefill.host === decode.host ? 0 : decode.kvTcp !== undefined ? 1 : 2;

const referenceFreeKvTokens = (worker: WorkerView, assigned: number): number => {
  const { kvCapacityTokens, kvFreeTokens } = worker;
  if (kvCapacityTokens === undefined || kvFreeTokens === undefined) return Number.POSITIVE_INFINITY;
  const perRequest = kvCapacityTokens / Math.max(1, worker.capacity);
  return kvCapacityTokens - Math.max(kvCapacityTokens - kvFreeTokens, assigned * perRequest);
};

const compareTuples = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
};

const referencePlaceRequest = (
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
  const affinityMaxLoad = policy.affinityMaxLoad ?? 1;
  const cached = (w: WorkerView) => (load(w) < affinityMaxLoad ? request.cachedBlocks?.get(w.id) ?? 0 : 0);
  const prefillOrder = prefills.filter(free).map((w, rank) => ({ w, rank })).sort((a, b) => cached(b.w) - cached(a.w) || a.rank - b.rank);
  const need = Math.max(1, request.kvTokens ?? 1);
  let best: { readonly key: ReadonlyArray<number>; readonly prefill: WorkerView; readonly decode: WorkerView } | undefined;
  prefillOrder.forEach(({ w: prefill }, prefillRank) => {
    decodes.forEach((decode, decodeRank) => {
      const translation = cost(prefill, decode);
      if (translation === undefined || !free(decode)) return;
      const fits = referenceFreeKvTokens(decode, assigned.get(decode.id) ?? 0) >= need ? 0 : 1;
      const key = [fits, translation, prefillRank, referenceLinkCost(prefill, decode), decodeRank];
      if (best === undefined || compareTuples(key, best.key) < 0) best = { key, prefill, decode };
    });
  });
  return best === undefined ? { _tag: "Saturated", model: wanted } : { _tag: "Picked", prefill: best.prefill, decode: best.decode };
};

// --- random inputs ---

/** Ids that sort differently by localeCompare and by code unit (case, punctuation, digits), with repeats. */
const IDS = ["p0", "p1", "p10", "p2", "d0", "d1", "D1", "d-1", "d_1", "a", "B", "b", "A", "w.3", "ä", "z", "Z9"];
const MODELS = ["m", "m2", "M"];
const FORMATS = ["kv", "kv2", "llama/a", "llama/b", "vendor"];
const COSTS = [undefined, 0, 1, 2, 0.5, 3] as const;

type MutableWorker = { -readonly [K in keyof WorkerView]: WorkerView[K] };

const arbitraryWorker = fc
  .record({
    id: fc.constantFrom(...IDS),
    role: fc.constantFrom("prefill" as const, "decode" as const),
    model: fc.constantFrom(...MODELS),
    kvFormat: fc.constantFrom(...FORMATS),
    inFlight: fc.oneof(fc.nat(20), fc.double({ min: 0, max: 20, noNaN: true })),
    capacity: fc.integer({ min: 0, max: 8 }),
    kvCapacityTokens: fc.option(fc.integer({ min: 0, max: 8192 }), { nil: undefined }),
    kvFreeTokens: fc.option(fc.integer({ min: 0, max: 8192 }), { nil: undefined }),
    host: fc.option(fc.constantFrom("h1", "h2", "h3"), { nil: undefined }),
    kvTcp: fc.option(fc.constantFrom("10.0.0.1:4000", "10.0.0.2:4000"), { nil: undefined }),
  })
  .map((w) => {
    // Optional fields absent (not present as undefined) when not drawn, as heartbeats send them.
    const out: Partial<MutableWorker> = {};
    for (const [k, v] of Object.entries(w)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    return out as MutableWorker;
  });

const arbitraryCounts = fc.array(fc.tuple(fc.constantFrom(...IDS), fc.nat(16)), { maxLength: 6 });

const arbitraryCall = fc.record({
  model: fc.option(fc.constantFrom(...MODELS, "unknown"), { nil: undefined }),
  kvTokens: fc.option(fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.constant(1)), { nil: undefined }),
  cachedBlocks: fc.option(arbitraryCounts, { nil: undefined }),
  assigned: arbitraryCounts,
  tieBreak: fc.oneof(fc.nat(40), fc.nat(2 ** 31)),
  maxLoad: fc.constantFrom(0, 0.5, 1, 1.5, 2, 3),
  affinityMaxLoad: fc.option(fc.constantFrom(0, 0.5, 1, 2), { nil: undefined }),
});

/** A translation-cost table over FORMATS: each ordered pair gets one of COSTS. */
const arbitraryCosts = fc.array(fc.constantFrom(...COSTS), { minLength: FORMATS.length ** 2, maxLength: FORMATS.length ** 2 });

const policyOf = (costs: ReadonlyArray<number | undefined>, maxLoad: number, affinityMaxLoad: number | undefined): PlacementPolicy => ({
  maxLoad,
  translationCost: (from, to) => costs[FORMATS.indexOf(from) * FORMATS.length + FORMATS.indexOf(to)],
  ...(affinityMaxLoad === undefined ? {} : { affinityMaxLoad }),
});

type Call = typeof arbitraryCall extends fc.Arbitrary<infer T> ? T : never;

const requestOf = (c: Call): PlacementRequest => ({
  model: c.model,
  ...(c.kvTokens === undefined ? {} : { kvTokens: c.kvTokens }),
  ...(c.cachedBlocks === undefined ? {} : { cachedBlocks: new Map(c.cachedBlocks) }),
});

/** Same answer: the very worker objects when picked, the same tag and fields otherwise. */
const expectSame = (got: PickResult, want: PickResult) => {
  if (want._tag === "Picked" && got._tag === "Picked") {
    expect(got.prefill).toBe(want.prefill);
    expect(got.decode).toBe(want.decode);
  } else {
    expect(got).toEqual(want);
  }
};

// A change to one worker of the list between two calls.
const arbitraryChange = fc.oneof(
  fc.record({ kind: fc.constant("load" as const), at: fc.nat(), inFlight: fc.nat(20), kvFreeTokens: fc.option(fc.nat(8192), { nil: undefined }) }),
  fc.record({ kind: fc.constant("id" as const), at: fc.nat(), id: fc.constantFrom(...IDS) }),
  fc.record({ kind: fc.constant("role" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("model" as const), at: fc.nat(), model: fc.constantFrom(...MODELS) }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), worker: arbitraryWorker }),
  fc.record({ kind: fc.constant("push" as const), worker: arbitraryWorker }),
  fc.record({ kind: fc.constant("pop" as const) }),
);

type Change = typeof arbitraryChange extends fc.Arbitrary<infer T> ? T : never;

const applyChange = (workers: MutableWorker[], change: Change) => {
  if (change.kind === "push") return void workers.push(change.worker);
  if (change.kind === "pop") return void workers.pop();
  if (workers.length === 0) return;
  const i = change.at % workers.length;
  const w = workers[i]!;
  switch (change.kind) {
    case "load":
      w.inFlight = change.inFlight;
      if (change.kvFreeTokens !== undefined) w.kvFreeTokens = change.kvFreeTokens;
      break;
    case "id":
      w.id = change.id;
      break;
    case "role":
      w.role = w.role === "prefill" ? "decode" : "prefill";
      break;
    case "model":
      w.model = change.model;
      break;
    case "replace":
      workers[i] = change.worker;
      break;
  }
};

describe("placeRequest", () => {
  it("answers exactly as the straightforward ranking over random clusters and requests", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(arbitraryWorker, { maxLength: 10 }), arbitraryCall, arbitraryCosts, (workers, c, costs) => {
        const assigned = new Map(c.assigned);
        const policy = policyOf(costs, c.maxLoad, c.affinityMaxLoad);
        const request = requestOf(c);
        const want = referencePlaceRequest(workers, assigned, request, c.tieBreak, policy);
        seen.add(want._tag);
        expectSame(placeRequest(workers, assigned, request, c.tieBreak, policy), want);
      }),
      { numRuns: 3000 },
    );
    // The inputs reach every answer.
    expect([...seen].sort()).toEqual(["NoCompatiblePair", "NoWorkers", "Picked", "Saturated", "UnknownModel"]);
  });

  it("answers exactly as the straightforward ranking when one worker list is reused and changed between calls", () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryWorker, { minLength: 1, maxLength: 8 }),
        arbitraryCosts,
        fc.array(fc.tuple(arbitraryChange, arbitraryCall), { minLength: 1, maxLength: 12 }),
        (initial, costs, steps) => {
          const workers = initial.map((w) => ({ ...w }));
          for (const [change, c] of steps) {
            applyChange(workers, change);
            const assigned = new Map(c.assigned);
            const policy = policyOf(costs, c.maxLoad, c.affinityMaxLoad);
            const request = requestOf(c);
            expectSame(placeRequest(workers, assigned, request, c.tieBreak, policy), referencePlaceRequest(workers, assigned, request, c.tieBreak, policy));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("answers exactly as the straightforward ranking when fresh lists reuse, reorder, drop and rename the same workers", () => {
    // The gateway passes a new list each time, of member records that live until the next heartbeat; equal
    // loads leave the choice to the id order and tieBreak.
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.constantFrom(...IDS), role: fc.constantFrom("prefill" as const, "decode" as const) }), { minLength: 1, maxLength: 8 }),
        fc.array(
          fc.record({
            order: fc.array(fc.nat(), { maxLength: 10 }),
            rename: fc.option(fc.tuple(fc.nat(), fc.constantFrom(...IDS)), { nil: undefined }),
            tieBreak: fc.nat(20),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        (members, calls) => {
          const records: MutableWorker[] = members.map((m) => ({ ...m, model: "m", kvFormat: "kv", inFlight: 1, capacity: 2 }));
          const policy: PlacementPolicy = { maxLoad: 2, translationCost: () => 0 };
          for (const call of calls) {
            if (call.rename !== undefined) records[call.rename[0] % records.length]!.id = call.rename[1];
            // Always the first record first (what the cache is looked up by), then any selection of the records.
            const list = [records[0]!, ...call.order.map((i) => records[i % records.length]!)];
            const request = { model: undefined };
            expectSame(placeRequest(list, new Map(), request, call.tieBreak, policy), referencePlaceRequest(list, new Map(), request, call.tieBreak, policy));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("answers exactly as the straightforward ranking on gateway-like pools: unique ids, prefix caches, loads at the limits", () => {
    // Loads land exactly on maxLoad and affinityMaxLoad often (small integer counts and capacities), and free KV
    // exactly on the request's size (round numbers).
    const arbitraryMember = fc.record({
      inFlight: fc.nat(8),
      capacity: fc.integer({ min: 1, max: 4 }),
      kvFormat: fc.constantFrom("kv", "kv2", "vendor"),
      host: fc.option(fc.constantFrom("h1", "h2"), { nil: undefined }),
      kvTcp: fc.option(fc.constant("10.0.0.9:4000"), { nil: undefined }),
      kv: fc.option(fc.tuple(fc.constantFrom(1024, 2048), fc.constantFrom(0, 256, 512, 1024, 2048)), { nil: undefined }),
      cached: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      assigned: fc.option(fc.nat(8), { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(arbitraryMember, { minLength: 1, maxLength: 5 }),
        fc.array(arbitraryMember, { minLength: 1, maxLength: 5 }),
        fc.nat(12),
        fc.option(fc.constantFrom(1, 256, 512, 768, 1024, 1500), { nil: undefined }),
        fc.constantFrom(1, 2, 3),
        fc.option(fc.constantFrom(0.5, 1), { nil: undefined }),
        (prefill, decode, tieBreak, kvTokens, maxLoad, affinityMaxLoad) => {
          const member = (role: "prefill" | "decode", m: (typeof prefill)[number], i: number): WorkerView => ({
            id: `${role[0]}${i}`,
            role,
            model: "m",
            kvFormat: m.kvFormat,
            inFlight: m.inFlight,
            capacity: m.capacity,
            ...(m.host === undefined ? {} : { host: m.host }),
            ...(m.kvTcp === undefined ? {} : { kvTcp: m.kvTcp }),
            ...(m.kv === undefined ? {} : { kvCapacityTokens: m.kv[0], kvFreeTokens: Math.min(m.kv[0], m.kv[1]) }),
          });
          const workers = [...prefill.map((m, i) => member("prefill", m, i)), ...decode.map((m, i) => member("decode", m, i))];
          const members = [...prefill, ...decode];
          const assigned = new Map(workers.flatMap((w, i) => (members[i]!.assigned === undefined ? [] : [[w.id, members[i]!.assigned!] as const])));
          const cachedBlocks = new Map(prefill.flatMap((m, i) => (m.cached === undefined ? [] : [[`p${i}`, m.cached] as const])));
          const policy: PlacementPolicy = {
            maxLoad,
            translationCost: (a, b) => (a === b ? 0 : a === "vendor" || b === "vendor" ? (a === "kv" ? 2 : undefined) : 1),
            ...(affinityMaxLoad === undefined ? {} : { affinityMaxLoad }),
          };
          const request: PlacementRequest = { model: undefined, ...(kvTokens === undefined ? {} : { kvTokens }), cachedBlocks };
          expectSame(placeRequest(workers, assigned, request, tieBreak, policy), referencePlaceRequest(workers, assigned, request, tieBreak, policy));
        },
      ),
      { numRuns: 4000 },
    );
  });

  it("answers exactly as the straightforward ranking on simulator-like cells: one model, one format, busy workers", () => {
    // Many calls on a few long-lived lists whose loads move, as the simulator makes them (and ties abound).
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(12), fc.integer({ min: 1, max: 3000 })), { minLength: 1, maxLength: 60 }),
        (np, nd, steps) => {
          const workers: MutableWorker[] = [
            ...Array.from({ length: np }, (_, i): MutableWorker => ({ id: `p${i}`, role: "prefill", model: "m", kvFormat: "kv", inFlight: 0, capacity: 4 })),
            ...Array.from({ length: nd }, (_, i): MutableWorker => ({ id: `d${i}`, role: "decode", model: "m", kvFormat: "kv", inFlight: 0, capacity: 8, kvCapacityTokens: 8000, kvFreeTokens: 8000 })),
          ];
          const policy: PlacementPolicy = { maxLoad: 2, translationCost: (a, b) => (a === b ? 0 : undefined) };
          steps.forEach(([at, inFlight, kvTokens], tieBreak) => {
            const w = workers[at % workers.length]!;
            w.inFlight = inFlight;
            if (w.role === "decode") w.kvFreeTokens = Math.max(0, 8000 - inFlight * 900);
            const request = { model: "m", kvTokens };
            expectSame(placeRequest(workers, new Map(), request, tieBreak, policy), referencePlaceRequest(workers, new Map(), request, tieBreak, policy));
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
