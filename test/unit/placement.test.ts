import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_LOAD, pickLeastLoaded, type WorkerView } from "../../src/policy/least-loaded.ts";
import { kvMoveCost } from "../../src/policy/kv-move-cost.ts";
import { freeKvTokens, linkCost, placeRequest, type PlacementPolicy } from "../../src/policy/placement.ts";

const worker = (id: string, role: "prefill" | "decode", inFlight = 0, extra: Partial<WorkerView> = {}): WorkerView => ({
  id,
  role,
  model: "m",
  kvFormat: "f",
  inFlight,
  capacity: 8,
  ...extra,
});
/** A decode worker with 8 sequences of 512 tokens, `busy` of them in use at its last heartbeat. */
const kvDecode = (id: string, busy: number, extra: Partial<WorkerView> = {}) =>
  worker(id, "decode", busy, { kvCapacityTokens: 8 * 512, kvFreeTokens: (8 - busy) * 512, ...extra });

const exactOrTranslate: PlacementPolicy = {
  maxLoad: DEFAULT_MAX_LOAD,
  translationCost: (a, b) => (a === b ? 0 : a[0] === b[0] ? 1 : undefined),
};
const picked = (result: ReturnType<typeof placeRequest>) => (result._tag === "Picked" ? [result.prefill.id, result.decode.id] : result._tag);

/** The routing rule before placement weighed KV, links and prefixes: the oracle for "nothing else known". */
const leastLoadedOracle = (
  workers: ReadonlyArray<WorkerView>,
  assigned: ReadonlyMap<string, number>,
  tieBreak: number,
  maxLoad: number,
  compatible: (a: string, b: string) => boolean,
) => {
  const load = (w: WorkerView) => Math.max(w.inFlight, assigned.get(w.id) ?? 0) / Math.max(1, w.capacity);
  const ranked = (role: "prefill" | "decode") => {
    const pool = workers.filter((w) => w.role === role).sort((a, b) => a.id.localeCompare(b.id));
    return pool.map((_, i) => pool[(i + tieBreak) % pool.length]!).sort((a, b) => load(a) - load(b));
  };
  const free = (w: WorkerView) => load(w) < maxLoad;
  for (const exactOnly of [true, false]) {
    for (const prefill of ranked("prefill").filter(free)) {
      const decode = ranked("decode").find((d) => free(d) && (exactOnly ? d.kvFormat === prefill.kvFormat : compatible(prefill.kvFormat, d.kvFormat)));
      if (decode) return [prefill.id, decode.id];
    }
  }
  return undefined;
};

const arbitraryCluster = fc.record({
  prefill: fc.array(fc.record({ inFlight: fc.nat(20), capacity: fc.integer({ min: 1, max: 8 }), kvFormat: fc.constantFrom("a", "b", "c") }), {
    minLength: 1,
    maxLength: 5,
  }),
  decode: fc.array(
    fc.record({
      inFlight: fc.nat(20),
      capacity: fc.integer({ min: 1, max: 8 }),
      kvFormat: fc.constantFrom("a", "b", "c"),
      context: fc.integer({ min: 16, max: 1024 }),
      host: fc.constantFrom("h1", "h2", undefined),
      kvTcp: fc.constantFrom("127.0.0.1:1", undefined),
    }),
    { minLength: 1, maxLength: 5 },
  ),
  assigned: fc.array(fc.nat(12), { minLength: 10, maxLength: 10 }),
  tieBreak: fc.nat(10),
  kvTokens: fc.integer({ min: 1, max: 1024 }),
});

type Cluster = typeof arbitraryCluster extends fc.Arbitrary<infer T> ? T : never;

const build = (c: Cluster, withKv: boolean) => {
  const workers: WorkerView[] = [
    ...c.prefill.map((p, i) => worker(`p${i}`, "prefill", p.inFlight, { capacity: p.capacity, kvFormat: p.kvFormat, host: "h1" })),
    ...c.decode.map((d, i) =>
      worker(`d${i}`, "decode", d.inFlight, {
        capacity: d.capacity,
        kvFormat: d.kvFormat,
        ...(withKv
          ? {
            kvCapacityTokens: d.capacity * d.context,
            kvFreeTokens: Math.max(0, d.capacity - d.inFlight) * d.context,
            ...(d.host === undefined ? {} : { host: d.host }),
            ...(d.kvTcp === undefined ? {} : { kvTcp: d.kvTcp }),
          }
          : {}),
      })
    ),
  ];
  const assigned = new Map(workers.map((w, i) => [w.id, c.assigned[i] ?? 0]));
  return { workers, assigned };
};

describe("placement", () => {
  it("with nothing known but loads and formats, places exactly as least-loaded routing always has", () => {
    fc.assert(
      fc.property(arbitraryCluster, fc.integer({ min: 1, max: 4 }), (c, maxLoad) => {
        const { workers, assigned } = build(c, false);
        const translates = (a: string, b: string) => a === b || (a === "a" && b === "b");
        const result = pickLeastLoaded(workers, assigned, undefined, c.tieBreak, maxLoad, translates);
        const oracle = leastLoadedOracle(workers, assigned, c.tieBreak, maxLoad, translates);
        if (oracle === undefined) expect(["Saturated", "NoCompatiblePair"]).toContain(result._tag);
        else expect(picked(result)).toEqual(oracle);
      }),
      { numRuns: 500 },
    );
  });

  it("always picks a translatable pair of free workers, and one whose KV fits whenever such a pair exists", () => {
    fc.assert(
      fc.property(arbitraryCluster, (c) => {
        const { workers, assigned } = build(c, true);
        const result = placeRequest(workers, assigned, { model: undefined, kvTokens: c.kvTokens }, c.tieBreak, exactOrTranslate);
        const load = (w: WorkerView) => Math.max(w.inFlight, assigned.get(w.id) ?? 0) / w.capacity;
        const free = (w: WorkerView) => load(w) < DEFAULT_MAX_LOAD;
        const fits = (d: WorkerView) => freeKvTokens(d, assigned.get(d.id) ?? 0) >= c.kvTokens;
        const prefills = workers.filter((w) => w.role === "prefill" && free(w));
        const decodes = workers.filter((w) => w.role === "decode" && free(w));
        const pairs = prefills.flatMap((p) => decodes.filter((d) => exactOrTranslate.translationCost(p.kvFormat, d.kvFormat) !== undefined).map((d) => [p, d] as const));
        if (pairs.length === 0) {
          expect(["Saturated", "NoCompatiblePair"]).toContain(result._tag);
          return;
        }
        expect(result._tag).toBe("Picked");
        if (result._tag !== "Picked") return;
        expect(free(result.prefill) && free(result.decode)).toBe(true);
        const cost = exactOrTranslate.translationCost(result.prefill.kvFormat, result.decode.kvFormat);
        expect(cost).toBeDefined();
        if (pairs.some(([, d]) => fits(d))) expect(fits(result.decode)).toBe(true);
        // Among pairs that fit as well as the chosen one, none translates more cheaply.
        const cheapest = Math.min(...pairs.filter(([, d]) => fits(d) === fits(result.decode)).map(([p, d]) => exactOrTranslate.translationCost(p.kvFormat, d.kvFormat)!));
        expect(cost).toBe(cheapest);
      }),
      { numRuns: 500 },
    );
  });

  it("counts free KV as capacity less the larger of reported use and what this caller placed", () => {
    expect(freeKvTokens(kvDecode("d", 2), 0)).toBe(6 * 512);
    expect(freeKvTokens(kvDecode("d", 2), 1)).toBe(6 * 512);
    expect(freeKvTokens(kvDecode("d", 2), 5)).toBe(3 * 512);
    expect(freeKvTokens(kvDecode("d", 8), 0)).toBe(0);
    expect(freeKvTokens(worker("d", "decode"), 100)).toBe(Number.POSITIVE_INFINITY);
  });

  it("takes the decode worker with room for the KV, even if it must translate, over an exact one that is full", () => {
    const workers = [worker("p0", "prefill", 0, { kvFormat: "a1" }), kvDecode("d0", 8, { kvFormat: "a1" }), kvDecode("d1", 7, { kvFormat: "a2" })];
    const request = { model: undefined, kvTokens: 300 };
    expect(picked(placeRequest(workers, new Map(), request, 0, exactOrTranslate))).toEqual(["p0", "d1"]);
    // Once this caller has placed a request on d1 (not yet in its report), d1 has no room either: exact wins again.
    expect(picked(placeRequest(workers, new Map([["d1", 8]]), request, 0, exactOrTranslate))).toEqual(["p0", "d0"]);
    // A request larger than a sequence fits nowhere: placement falls back to format and load.
    expect(picked(placeRequest(workers, new Map(), { model: undefined, kvTokens: 600 }, 0, exactOrTranslate))).toEqual(["p0", "d0"]);
  });

  it("prefers the exact format when both have room, and the cheaper translation between translating ones", () => {
    const workers = [worker("p0", "prefill", 0, { kvFormat: "a1" }), kvDecode("d0", 6, { kvFormat: "a1" }), kvDecode("d1", 0, { kvFormat: "a2" })];
    expect(picked(placeRequest(workers, new Map(), { model: undefined, kvTokens: 100 }, 0, exactOrTranslate))).toEqual(["p0", "d0"]);
    const graded: PlacementPolicy = { maxLoad: 2, translationCost: (a, b) => (a === b ? 0 : b === "x" ? 2 : 1) };
    const translating = [worker("p0", "prefill", 0, { kvFormat: "a" }), kvDecode("d0", 0, { kvFormat: "x" }), kvDecode("d1", 5, { kvFormat: "y" })];
    expect(picked(placeRequest(translating, new Map(), { model: undefined }, 0, graded))).toEqual(["p0", "d1"]);
  });

  it("prefers the cheaper link among otherwise equal decode workers: same host, then TCP, then NATS", () => {
    const p = worker("p0", "prefill", 0, { host: "h1" });
    expect(linkCost(p, kvDecode("d", 0, { host: "h1" }))).toBe(0);
    expect(linkCost(p, kvDecode("d", 0, { host: "h2", kvTcp: "10.0.0.2:4000" }))).toBe(1);
    expect(linkCost(p, kvDecode("d", 0, { host: "h2" }))).toBe(2);
    expect(linkCost(worker("p", "prefill"), kvDecode("d", 0))).toBe(2);
    const workers = [p, kvDecode("d0", 0, { host: "h2" }), kvDecode("d1", 3, { host: "h2", kvTcp: "x:1" }), kvDecode("d2", 5, { host: "h1" })];
    expect(picked(placeRequest(workers, new Map(), { model: undefined }, 0, exactOrTranslate))).toEqual(["p0", "d2"]);
    expect(picked(placeRequest(workers.slice(0, 3), new Map(), { model: undefined }, 0, exactOrTranslate))).toEqual(["p0", "d1"]);
  });

  it("sends a prompt to the prefill worker holding its longest cached prefix while that worker is not overloaded", () => {
    const workers = [worker("p0", "prefill", 0), worker("p1", "prefill", 3), worker("p2", "prefill", 2), kvDecode("d0", 0)];
    const cachedBlocks = new Map([["p1", 4], ["p2", 12]]);
    expect(picked(placeRequest(workers, new Map(), { model: undefined, cachedBlocks }, 0, exactOrTranslate))).toEqual(["p2", "d0"]);
    // p2 at capacity (8 in flight of 8): affinity yields to load, then the next holder, then least loaded.
    expect(picked(placeRequest(workers, new Map([["p2", 8]]), { model: undefined, cachedBlocks }, 0, exactOrTranslate))).toEqual(["p1", "d0"]);
    expect(picked(placeRequest(workers, new Map([["p1", 8], ["p2", 8]]), { model: undefined, cachedBlocks }, 0, exactOrTranslate))).toEqual(["p0", "d0"]);
    expect(picked(placeRequest(workers, new Map(), { model: undefined }, 0, exactOrTranslate))).toEqual(["p0", "d0"]);
  });

  it("costs KV moves: none for equal formats, a V transpose between llama.cpp states, canonical for vendor formats, none across models", () => {
    const fa1 = "llama.cpp-seq-state/stories260K/seqs=8/fa=1";
    const fa0 = "llama.cpp-seq-state/stories260K/seqs=8/fa=0";
    expect(kvMoveCost(fa1, fa1)).toBe(0);
    expect(kvMoveCost(fa1, fa0)).toBe(1);
    expect(kvMoveCost(fa1, "vllm-flash-attention/f16/stories260K/kv_heads=4")).toBe(2);
    expect(kvMoveCost(fa1, "llama.cpp-seq-state/other/seqs=8/fa=1")).toBeUndefined();
  });
});
