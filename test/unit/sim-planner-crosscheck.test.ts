// Cross-check: for every configuration on the planner's Pareto frontier (Llama-3-70B, prefill-heavy and
// decode-heavy, anchor chips, mid prices), and for the three configurations behind the reproduction's ratios at
// its prices, the simulator runs that exact cluster at the planner's assumed load
// and its cost per million tokens that MET the SLO must be within 15% of the planner's closed-form cost. An
// over-promising planner (SLO missed, load not sustained) raises the simulated cost and fails this test — it
// did for colocated configurations before the slot-wait and TPOT-percentile terms (src/planner/queueing.ts).
import { describe, expect, it } from "vitest";
import { loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import type { PlanConfig } from "../../src/planner/evaluate.ts";
import { B200, GAUDI3, H100, plan, type PlanOutput } from "../../src/planner/plan.ts";
import type { Slo } from "../../src/planner/slo.ts";
import { DEFAULT_SLOS } from "../../src/planner/slo.ts";
import { findWorkload, type Workload } from "../../src/planner/workloads.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import { clusterFromPlan, plannedRate } from "../../src/sim/from-plan.ts";
import { seededRng } from "../../src/sim/random.ts";
import { simulate } from "../../src/sim/simulator.ts";

const catalog = loadAcceleratorCatalog();
const model = findModel("llama-3-70b");
const TOLERANCE = 0.15;

/** Simulates each configuration at the planner's assumed load; planner and simulated cost per million tokens. */
const crossCheck = (out: PlanOutput, workload: Workload, slo: Slo, configs: readonly PlanConfig[]) => {
  const ctx = { catalog, model, dtype: "fp8" as const, link: DEFAULT_KV_LINK, prices: out.prices };
  return configs.map((c) => {
    const rate = plannedRate(c, out.prices, workload);
    // steady state: warm up for 1.5 request lifetimes, then measure ≥ 3 lifetimes and ≥ 2000 requests
    const lifetime = c.ttftS + workload.outputTokens * c.tpotS;
    const warmup = 1.5 * lifetime;
    const seconds = warmup + Math.max(3 * lifetime, 2000 / rate);
    const s = simulate({ cluster: clusterFromPlan(c, ctx), arrivals: poissonArrivals(rate, workload, seconds, seededRng(11)), slo, seconds, warmupSeconds: warmup }).summary;
    return { pair: c.pair, planner: c.usdPerMtok, simulated: s.usdPerMtokWithinSlo, attainment: s.sloAttainment, ratio: s.usdPerMtokWithinSlo / c.usdPerMtok };
  });
};

describe("planner vs simulator cost per token on the Pareto frontier", () => {
  for (const wid of ["prefill-heavy", "decode-heavy"]) {
    it(`${wid}: every frontier configuration agrees within 15%`, () => {
      const workload = findWorkload(wid);
      const slo = DEFAULT_SLOS[wid]!;
      const out = plan({ catalog, model, workload, slo, chips: [H100, B200, GAUDI3, "amd-mi300x"] });
      expect(out.frontier.length).toBeGreaterThan(5);
      for (const r of crossCheck(out, workload, slo, out.frontier)) expect(Math.abs(r.ratio - 1), JSON.stringify(r)).toBeLessThan(TOLERANCE);
    }, 180_000);
  }
});

describe("planner vs simulator on the configurations behind the reproduction's ratios (docs/economics.md)", () => {
  const prices = { [H100]: 5.0, [B200]: 4.99, "amd-mi300x": 1.5, [GAUDI3]: 1.13 };
  for (const wid of ["prefill-heavy", "decode-heavy"]) {
    it(`${wid}: H100:H100, B200:Gaudi 3 and B200:B200 agree within 15%`, () => {
      const workload = findWorkload(wid);
      const slo = DEFAULT_SLOS[wid]!;
      const out = plan({ catalog, model, workload, slo, priceOverrides: prices, chips: [H100, B200, GAUDI3, "amd-mi300x"] });
      const configs = [`${H100}:${H100}`, `${B200}:${GAUDI3}`, `${B200}:${B200}`].map((pair) => out.bestByPair.find((c) => c.pair === pair)!);
      for (const r of crossCheck(out, workload, slo, configs)) expect(Math.abs(r.ratio - 1), JSON.stringify(r)).toBeLessThan(TOLERANCE);
    }, 180_000);
  }
});
