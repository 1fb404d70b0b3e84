// Ownership-cost prices (`--prices tco`): purchase ÷ (years × 8,760 h) + TDP × PUE × $/kWh per chip; chips
// without a purchase price are not priced unless --purchase gives one; the flags are checked; and `tandem plan`
// plans on them.
import { afterEach, describe, expect, it, vi } from "vitest";
import { runPlan } from "../../src/cli/plan.ts";
import { parsePrices } from "../../src/cli/planning-flags.ts";
import { loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { choosePrices, DEFAULT_TCO, tcoHourly } from "../../src/planner/pricing.ts";

const catalog = loadAcceleratorCatalog();
const chip = (id: string) => catalog.accelerators.find((a) => a.id === id)!;
const same = (id: string) => id;

describe("ownership-cost prices", () => {
  it("amortise the purchase over the years and add the power at the PUE", () => {
    // H100: $27,500 over 4 years, 700 W at PUE 1.3 and $0.10/kWh.
    expect(tcoHourly(chip("nvidia-h100-sxm"), DEFAULT_TCO)).toBeCloseTo(27_500 / (4 * 8760) + 0.7 * 1.3 * 0.1, 10);
    expect(tcoHourly(chip("intel-gaudi3-hl325l"), { ...DEFAULT_TCO, years: 5, usdPerKwh: 0.2, pue: 1.5 })).toBeCloseTo(
      15_625 / (5 * 8760) + 0.9 * 1.5 * 0.2,
      10,
    );
  });

  it("leave chips without a purchase price unpriced unless one is given; hourly overrides still win", () => {
    const plain = choosePrices(catalog, "tco");
    expect(plain["nvidia-b200"]).toBeUndefined();
    expect(plain["nvidia-h200-sxm"]).toBeUndefined(); // no purchase estimate in the catalog
    expect(Object.keys(plain).sort()).toEqual(["amd-mi300x", "intel-gaudi3-hl325l", "nvidia-h100-sxm"]);
    const withB200 = choosePrices(catalog, "tco", {}, { ...DEFAULT_TCO, purchaseUsd: { "nvidia-b200": 35_000 } });
    expect(withB200["nvidia-b200"]).toBeCloseTo(35_000 / (4 * 8760) + 1.0 * 1.3 * 0.1, 10);
    expect(choosePrices(catalog, "tco", { "nvidia-h100-sxm": 9 })["nvidia-h100-sxm"]).toBe(9);
  });

  it("parse the flags, and refuse ownership flags without --prices tco or a PUE below 1", () => {
    const parsed = parsePrices({ prices: "tco", purchase: ["nvidia-b200=35000"], "tco-years": "5", "usd-per-kwh": "0.08", pue: "1.2" }, same);
    expect(parsed.tco).toEqual({ years: 5, usdPerKwh: 0.08, pue: 1.2, purchaseUsd: { "nvidia-b200": 35_000 } });
    expect(() => parsePrices({ prices: "mid", purchase: ["nvidia-b200=35000"] }, same)).toThrow(/need --prices tco/);
    expect(() => parsePrices({ prices: "tco", pue: "0.9" }, same)).toThrow(/--pue must be at least 1/);
    expect(() => parsePrices({ prices: "tco", purchase: ["nvidia-b200"] }, same)).toThrow(/--purchase expects chip=USD/);
    expect(() => parsePrices({ prices: "rental" }, same)).toThrow(/low, mid, high or tco/);
  });
});

describe("tandem plan --prices tco", () => {
  afterEach(() => vi.restoreAllMocks());
  const run = async (args: string[]) => {
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((s) => ((out += String(s)), true));
    vi.spyOn(process.stderr, "write").mockImplementation((s) => ((out += String(s)), true));
    const code = await runPlan(args);
    return { code, out };
  };
  const base = ["--model", "llama-3-70b", "--workload", "decode-heavy", "--chips", "nvidia-h100-sxm,nvidia-b200,intel-gaudi3-hl325l"];

  it("plans on ownership costs and reports them", async () => {
    const { code, out } = await run([...base, "--prices", "tco", "--purchase", "nvidia-b200=35000", "--json"]);
    expect(code).toBe(0);
    const result = JSON.parse(out);
    expect(result.pricePoint).toBe("tco");
    expect(result.tco.purchaseUsd).toEqual({ "nvidia-b200": 35_000 });
    expect(result.prices["nvidia-b200"]).toBeCloseTo(35_000 / (4 * 8760) + 0.13, 6);
    expect(result.ratios["H100:H100"].usdPerMtok).toBeGreaterThan(result.winner.usdPerMtok);
  });

  it("says which chip it cannot price, and how to fix it", async () => {
    const { code, out } = await run([...base, "--prices", "tco"]);
    expect(code).toBe(2);
    expect(out).toContain("cannot price nvidia-b200");
    expect(out).toContain("--purchase chip=USD");
  });
});
