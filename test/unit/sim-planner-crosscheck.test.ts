// Cross-check: for every configuration on the planner's Pareto frontier (Llama-3-70B, prefill-heavy and
// decode-heavy, anchor chips, mid prices), the simulator runs that exact cluster at the planner's assumed load
// and its cost per million tokens that MET the SLO must be within 15% of the planner's closed-form cost. An
// over-promising planner (SLO missed, load not sustained) raises the simulated cost and fails this test — it
// did for colocated configurations before the slot-wait and TPOT-percentile terms (src/planner/queueing.ts).
import { describe, expect, it } from "vitest";
import { loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { B200, GAUDI3, H100, plan } from "../../src/planner/plan.ts";
import { DEFAULT_SLOS } from "../../src/planner/slo.ts";
import { findWorkload } from "../../src/planner/workloads.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import { clusterFromPlan, plannedRate } from "../../src/sim/from-plan.ts";
import { seededRng } from "../../src/sim/random.ts";
import { simulate } from "../../src/sim/simulator.ts";

const catalog = loadAcceleratorCatalog();
const model = findModel("llama-3-70b");
const TOLERANCE = 0.15;

describe("planner vs simulator cost per token on the Pareto frontier", () => {
  for (const wid of ["prefill-heavy", "decode-heavy"]) {
    it(`${wid}: every frontier configuration agrees within 15%`, () => {
      const workload = findWorkload(wid);
      const slo = DEFAULT_SLOS[wid]!;
      const out = plan({ catalog, model, workload, slo, chips: [H100, B200, GAUDI3, "amd-mi300x"] });
      const ctx = { catalog, model, dtype: "fp8" as const, link: DEFAULT_KV_LINK, prices: out.prices };
      expect(out.frontier.length).toBeGreaterThan(5);
      const rows = out.frontier.map((c) => {
        const rate = plannedRate(c, out.prices, workload);
        // steady state: warm up for 1.5 request lifetimes, then measure ≥ 3 lifetimes and ≥ 2000 requests
        const lifetime = c.ttftS + workload.outputTokens * c.tpotS;
        const warmup = 1.5 * lifetime;
        const seconds = warmup + Math.max(3 * lifetime, 2000 / rate);
        const s = simulate({ cluster: clusterFromPlan(c, ctx), arrivals: poissonArrivals(rate, workload, seconds, seededRng(11)), slo, seconds, warmupSeconds: warmup }).summary;
        return { pair: c.pair, planner: c.usdPerMtok, simulated: s.usdPerMtokWithinSlo, attainment: s.sloAttainment, ratio: s.usdPerMtokWithinSlo / c.usdPerMtok };
      });
      for (const r of rows) expect(Math.abs(r.ratio - 1), JSON.stringify(r)).toBeLessThan(TOLERANCE);
    }, 180_000);
  }
});
