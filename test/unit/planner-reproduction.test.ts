// Planner reproduction of the Gimlet Labs anchor (docs/economics.md): what holds is asserted; what does not
// (the 3x / 4x / 2.5x magnitudes at catalog prices) is asserted as the model's own, documented, value band.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { decodeStepDuringPrefill, prefillUnderDecode, type InterferenceCase } from "../../src/planner/interference.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { B200, GAUDI3, H100, pairRatio, plan } from "../../src/planner/plan.ts";
import { choosePrices, DEFAULT_TCO } from "../../src/planner/pricing.ts";
import { decodeFrontier, pricedChips } from "../../src/planner/search.ts";
import { DEFAULT_SLOS } from "../../src/planner/slo.ts";
import { findWorkload } from "../../src/planner/workloads.ts";

const catalog = loadAcceleratorCatalog();
const model = findModel("llama-3-70b");
const ANCHOR_CHIPS = [H100, B200, GAUDI3, "amd-mi300x"];
const HH = `${H100}:${H100}`;
const run = (wid: string) => plan({ catalog, model, workload: findWorkload(wid), slo: DEFAULT_SLOS[wid]!, pricePoint: "mid", chips: ANCHOR_CHIPS });
/** One plan on the ownership basis, B200 bought at `b200` dollars. */
const runTco = (wid: string, b200: number, modelSpec = model) =>
  plan({
    catalog,
    model: modelSpec,
    workload: findWorkload(wid),
    slo: DEFAULT_SLOS[wid]!,
    pricePoint: "tco",
    tco: { ...DEFAULT_TCO, purchaseUsd: { [B200]: b200 } },
    chips: ANCHOR_CHIPS,
  });
const within20 = (value: number, anchor: number) => {
  expect(value).toBeGreaterThan(anchor * 0.8);
  expect(value).toBeLessThan(anchor * 1.2);
};
const prefillHeavy = run("prefill-heavy");
const decodeHeavy = run("decode-heavy");

describe("planner reproduction (Llama-3-70B, fp8, mid catalog prices, anchor chip set)", () => {
  it("B200:Gaudi 3 is cheaper than H100:H100 on both presets, and more so on decode-heavy (anchor: 3x < 4x)", () => {
    const ph = pairRatio(prefillHeavy, HH, `${B200}:${GAUDI3}`)!;
    const dh = pairRatio(decodeHeavy, HH, `${B200}:${GAUDI3}`)!;
    expect(ph).toBeGreaterThan(1);
    expect(dh).toBeGreaterThan(ph);
    // Model values (NOT the anchor's 3x / 4x; see docs/economics.md for why): ≈ 1.33 and ≈ 1.78.
    expect(ph).toBeGreaterThan(1.2);
    expect(ph).toBeLessThan(1.45);
    expect(dh).toBeGreaterThan(1.6);
    expect(dh).toBeLessThan(1.95);
  });

  it("on decode-heavy the mix beats all-B200 by 1.6–1.7x ± 20% (the anchor's 4x / 2.5x)", () => {
    within20(pairRatio(decodeHeavy, `${B200}:${B200}`, `${B200}:${GAUDI3}`)!, 1.65);
  });

  it("all-B200 vs H100:H100 on decode-heavy is ≈ 1.07x in this model (anchor 2.5x: does not hold at catalog mid prices)", () => {
    const r = pairRatio(decodeHeavy, HH, `${B200}:${B200}`)!;
    expect(r).toBeGreaterThan(1);
    expect(r).toBeLessThan(1.3);
  });

  it("the decode Pareto frontier is {Gaudi 3, MI300X, B200} at low and mid prices", () => {
    for (const pp of ["low", "mid"] as const) {
      for (const wid of ["decode-heavy", "prefill-heavy"]) {
        const prices = choosePrices(catalog, pp);
        const ctx = { model, workload: findWorkload(wid), slo: DEFAULT_SLOS[wid]!, link: DEFAULT_KV_LINK, dtype: "fp8" as const, prices };
        const chips = new Set(decodeFrontier(ctx, pricedChips(catalog, prices, ANCHOR_CHIPS)).map((p) => p.chip));
        expect([...chips].sort()).toEqual(["amd-mi300x", GAUDI3, B200].sort());
      }
    }
  });
});

describe("reproduction at the catalog's incumbent-high / challengers-low prices (docs/economics.md)", () => {
  // H100 at the top of its catalog range, every other anchor chip at the bottom of its own (Gaudi 3: the derived
  // low, H100's low hourly ÷ purchase × Gaudi 3's purchase estimate).
  const prices = { [H100]: 5.0, [B200]: 4.99, "amd-mi300x": 1.5, [GAUDI3]: 1.13 };
  const runAt = (wid: string) => plan({ catalog, model, workload: findWorkload(wid), slo: DEFAULT_SLOS[wid]!, priceOverrides: prices, chips: ANCHOR_CHIPS });
  const prefill = runAt("prefill-heavy");
  const decode = runAt("decode-heavy");

  it("B200:Gaudi 3 ≈ 3x (prefill-heavy) and ≈ 4x (decode-heavy), B200:B200 ≈ 2.5x (decode-heavy) against H100:H100, each ±20%", () => {
    within20(pairRatio(prefill, HH, `${B200}:${GAUDI3}`)!, 3);
    within20(pairRatio(decode, HH, `${B200}:${GAUDI3}`)!, 4);
    within20(pairRatio(decode, HH, `${B200}:${B200}`)!, 2.5);
    within20(pairRatio(decode, `${B200}:${B200}`, `${B200}:${GAUDI3}`)!, 1.65);
  });

  it("the decode Pareto set is {Gaudi 3, MI300X, B200} on both presets", () => {
    for (const wid of ["decode-heavy", "prefill-heavy"]) {
      const ctx = { model, workload: findWorkload(wid), slo: DEFAULT_SLOS[wid]!, link: DEFAULT_KV_LINK, dtype: "fp8" as const, prices: prefill.prices };
      const chips = new Set(decodeFrontier(ctx, pricedChips(catalog, prefill.prices, ANCHOR_CHIPS)).map((p) => p.chip));
      expect([...chips].sort()).toEqual(["amd-mi300x", GAUDI3, B200].sort());
    }
  });

  it("where it disagrees: at these prices B200 does not win prefill — every winner prefills on Gaudi 3", () => {
    expect(prefill.winner.prefillChip).toBe(GAUDI3);
    expect(decode.winner.prefillChip).toBe(GAUDI3);
  });
});

describe("planner reproduction on an ownership (TCO) basis (B200 bought at $30k / $35k)", () => {
  const at30 = { prefill: runTco("prefill-heavy", 30_000), decode: runTco("decode-heavy", 30_000) };
  const at35 = { prefill: runTco("prefill-heavy", 35_000), decode: runTco("decode-heavy", 35_000) };

  it("all-B200 on decode-heavy is within ±20% of the anchor's 2.5x, and the prefill-heavy mix of 3x at $30k", () => {
    for (const run of [at30, at35]) within20(pairRatio(run.decode, HH, `${B200}:${B200}`)!, 2.5);
    within20(pairRatio(at30.prefill, HH, `${B200}:${GAUDI3}`)!, 3);
  });

  it("B200 wins prefill: every winner prefills on B200", () => {
    for (const run of [at30, at35]) {
      expect(run.prefill.winner.pair.startsWith(`${B200}:`)).toBe(true);
      expect(run.decode.winner.pair.startsWith(`${B200}:`)).toBe(true);
    }
  });

  it("the decode-heavy mix stays ≈ 1.7x (anchor 4x: does not hold; docs/economics.md says why)", () => {
    for (const run of [at30, at35]) {
      const r = pairRatio(run.decode, HH, `${B200}:${GAUDI3}`)!;
      expect(r).toBeGreaterThan(1.55);
      expect(r).toBeLessThan(1.9);
    }
  });
});

describe("colocated interference model vs the H200 measurement", () => {
  const cases = (JSON.parse(readFileSync(new URL("../../../shared/data/calibration/h200-interference-8b.json", import.meta.url), "utf8")) as { cases: InterferenceCase[] }).cases;
  it("predicts the stretched decode step within 15% and the slowed prefill within 10%", () => {
    for (const c of cases) {
      const d = decodeStepDuringPrefill(c.decode_step_ms_alone, c.prefill_ms_alone);
      expect(Math.abs(d / c.decode_step_ms_during_prefill - 1)).toBeLessThan(0.15);
      const p = prefillUnderDecode(c.prefill_ms_alone, c.decode_step_ms_alone);
      expect(Math.abs(p / c.prefill_ms_with_decode - 1)).toBeLessThan(0.1);
    }
  });
});

describe("planner reproduction on Llama-3-405B, ownership basis (B200 bought at $40k)", () => {
  const model405 = findModel("llama-3-405b");
  const prefill = runTco("prefill-heavy", 40_000, model405);
  const decode = runTco("decode-heavy", 40_000, model405);

  it("the prefill-heavy mix (3x) and all-B200 on decode-heavy (2.5x) are both within ±20% at one price set", () => {
    within20(pairRatio(prefill, HH, `${B200}:${GAUDI3}`)!, 3);
    within20(pairRatio(decode, HH, `${B200}:${B200}`)!, 2.5);
  });

  it("the decode-heavy mix stays ≈ 2.3x (anchor 4x: does not hold) and does not beat all-B200", () => {
    const mix = pairRatio(decode, HH, `${B200}:${GAUDI3}`)!;
    expect(mix).toBeGreaterThan(2.1);
    expect(mix).toBeLessThan(2.5);
    expect(pairRatio(decode, `${B200}:${B200}`, `${B200}:${GAUDI3}`)!).toBeLessThan(1);
  });
});
