// Queueing sanity of the simulator against closed forms: Little's law (L = λW) on a full disaggregated
// cluster, and the M/D/1 mean wait (Pollaczek–Khinchine) on a single batch-1 prefill server.
import { describe, expect, it } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { prefillSeconds } from "../../src/hardware/performance-model.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { customWorkload } from "../../src/planner/workloads.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import type { ClusterSpec } from "../../src/sim/cluster.ts";
import { searchGoodput } from "../../src/sim/goodput.ts";
import { seededRng } from "../../src/sim/random.ts";
import { simulate } from "../../src/sim/simulator.ts";

const catalog = loadAcceleratorCatalog();
const prices = choosePrices(catalog);
const h100 = findAccelerator(catalog, "nvidia-h100-sxm");
const model = findModel("llama-3-8b");
const slo = { ttftMs: 500, tpotMs: 50, percentile: 0.9 };

const disaggregated = (prefillGroups: number, decodeGroups: number, decodeBatch: number): ClusterSpec => ({
  model,
  dtype: "fp8",
  gateways: 1,
  prices,
  topology: {
    kind: "disaggregated",
    prefill: { chip: h100, tp: 1, groups: prefillGroups, batch: 1 },
    decode: { chip: h100, tp: 1, groups: decodeGroups, batch: decodeBatch },
    link: DEFAULT_KV_LINK,
  },
});

describe("simulator queueing", () => {
  it("obeys Little's law: time-averaged requests in the system = arrival rate × mean time in the system", () => {
    const workload = customWorkload(512, 64);
    const seconds = 400;
    const r = simulate({ cluster: disaggregated(2, 2, 32), arrivals: poissonArrivals(40, workload, seconds, seededRng(7)), slo, seconds, warmupSeconds: 50 }).summary;
    expect(r.requests.unfinished).toBe(0);
    const lambda = r.requests.arrived / (r.window.end - r.window.start);
    expect(r.meanInSystem).toBeGreaterThan(5); // a busy system, not a trivially empty one
    expect(Math.abs(r.meanInSystem / (lambda * r.latencyS.mean) - 1)).toBeLessThan(0.03);
  });

  it("matches the M/D/1 mean wait ρs / (2(1 − ρ)) on one batch-1 prefill server", () => {
    const workload = customWorkload(2048, 1); // one output token: the request ends with its prefill
    const s = prefillSeconds(h100, model, 2048, { tp: 1, batch: 1, dtype: "fp8" });
    for (const rho of [0.5, 0.8]) {
      const seconds = (200_000 * s) / rho;
      const r = simulate({ cluster: disaggregated(1, 1, 64), arrivals: poissonArrivals(rho / s, workload, seconds, seededRng(1)), slo, seconds }).summary;
      const expected = s + (rho * s) / (2 * (1 - rho));
      expect(r.ttftS.count).toBeGreaterThan(150_000);
      expect(Math.abs(r.ttftS.mean / expected - 1)).toBeLessThan(0.05);
      expect(Math.abs(r.pools[0]!.utilisation / rho - 1)).toBeLessThan(0.03);
    }
  });

  it("the goodput search answer meets the target and every rate tried over 10% above it misses", () => {
    const workload = customWorkload(2048, 1);
    const plan = { cluster: disaggregated(1, 1, 64), workload, slo: { ttftMs: 200, tpotMs: 50, percentile: 0.9 }, arrivals: { kind: "poisson" as const }, seconds: 600, seed: 5 };
    const g = searchGoodput(plan, { iterations: 10 });
    expect(g.goodput).toBeGreaterThan(0);
    expect(g.atGoodput!.sloAttainment).toBeGreaterThanOrEqual(0.9);
    const above = g.points.filter((p) => p.rate > g.goodput * 1.1);
    expect(above.length).toBeGreaterThan(0);
    for (const p of above) expect(p.attainment).toBeLessThan(0.9);
    // a single server: goodput is below its capacity 1/s
    const s = prefillSeconds(h100, model, 2048, { tp: 1, batch: 1, dtype: "fp8" });
    expect(g.goodput).toBeLessThan(1 / s);
  });
});
