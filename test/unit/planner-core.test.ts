// Planner building blocks: queueing margin, KV link, pricing, Pareto frontier and break-even prices that flip the winner.
import { describe, expect, it } from "vitest";
import { loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { kvTransferSeconds, DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { plan } from "../../src/planner/plan.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { paretoFrontier } from "../../src/planner/search.ts";
import { maxUtilisation, percentileSojourn, DEFAULT_SLOS } from "../../src/planner/slo.ts";
import { findWorkload } from "../../src/planner/workloads.ts";
import type { PlanConfig } from "../../src/planner/evaluate.ts";

const catalog = loadAcceleratorCatalog();
const model = findModel("llama-3-70b");

describe("SLO queueing margin", () => {
  it("percentile sojourn grows with utilisation and maxUtilisation inverts it", () => {
    expect(percentileSojourn(0.1, 0, 0.9)).toBeCloseTo(0.1);
    expect(percentileSojourn(0.1, 0.8, 0.9)).toBeGreaterThan(percentileSojourn(0.1, 0.5, 0.9));
    const rho = maxUtilisation(0.1, 0.5, 0.9);
    expect(rho).toBeGreaterThan(0);
    expect(percentileSojourn(0.1, rho, 0.9)).toBeLessThanOrEqual(0.5 + 1e-9);
    expect(maxUtilisation(1, 0.5, 0.9)).toBe(0);
  });
});

describe("KV link", () => {
  it("adds the fixed cost, the last layer's bytes and translation only across vendors", () => {
    const same = kvTransferSeconds(DEFAULT_KV_LINK, model, 8192, model.kv_bytes_per_token.fp8, false);
    const cross = kvTransferSeconds(DEFAULT_KV_LINK, model, 8192, model.kv_bytes_per_token.fp8, true);
    expect(same).toBeGreaterThan(DEFAULT_KV_LINK.fixedMs / 1000);
    expect(cross - same).toBeCloseTo((model.layers * DEFAULT_KV_LINK.translateUsPerLayer) / 1e6, 9);
  });
});

describe("pricing", () => {
  it("uses the range point and prices Gaudi 3 at the H100 hourly/purchase ratio", () => {
    const mid = choosePrices(catalog, "mid");
    expect(mid["nvidia-h100-sxm"]).toBeCloseTo((1.99 + 5) / 2);
    expect(mid["intel-gaudi3-hl325l"]).toBeCloseTo((3.495 * 15625) / 27500);
    expect(mid["nvidia-gb200"]).toBeUndefined();
    expect(choosePrices(catalog, "mid", { "nvidia-b200": 4 })["nvidia-b200"]).toBe(4);
  });
});

describe("Pareto frontier", () => {
  it("keeps only non-dominated points", () => {
    const c = (usdPerMtok: number, interactivity: number) => ({ usdPerMtok, interactivity, pair: `${usdPerMtok}` }) as unknown as PlanConfig;
    const f = paretoFrontier([c(1, 10), c(2, 20), c(3, 15), c(0.5, 5), c(2.5, 20)]);
    expect(f.map((x) => x.usdPerMtok)).toEqual([0.5, 1, 2]);
  });
});

describe("sensitivity", () => {
  for (const wid of ["prefill-heavy", "decode-heavy", "chat"]) {
    it(`break-even prices flip the winner when applied (${wid})`, () => {
      const input = { catalog, model, workload: findWorkload(wid), slo: DEFAULT_SLOS[wid]!, chips: ["nvidia-h100-sxm", "nvidia-b200", "intel-gaudi3-hl325l", "amd-mi300x"] };
      const base = plan(input);
      expect(base.breakEvens.length).toBeGreaterThan(0);
      for (const b of base.breakEvens) {
        const nudge = b.direction === "above" ? 1.01 : 0.99;
        const before = plan({ ...input, priceOverrides: { [b.chip]: b.breakEvenUsdPerHour / nudge } });
        const after = plan({ ...input, priceOverrides: { [b.chip]: b.breakEvenUsdPerHour * nudge } });
        expect(before.winner.pair).toBe(base.winner.pair);
        expect(after.winner.pair).not.toBe(base.winner.pair);
      }
    });
  }
});
