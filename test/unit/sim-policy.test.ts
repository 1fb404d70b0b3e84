// The simulator routes with the live gateway's policy function — the same module, not a copy: with the module
// replaced by a spy, every routing decision of a run goes through it, and the gateway imports the same file.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { customWorkload } from "../../src/planner/workloads.ts";
import * as policy from "../../src/policy/least-loaded.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import { seededRng } from "../../src/sim/random.ts";
import { simulate } from "../../src/sim/simulator.ts";

vi.mock("../../src/policy/least-loaded.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/policy/least-loaded.ts")>();
  return { ...real, pickLeastLoaded: vi.fn(real.pickLeastLoaded) };
});

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const catalog = loadAcceleratorCatalog();
const h100 = findAccelerator(catalog, "nvidia-h100-sxm");

/** Resolved paths of the relative imports of `file` that import `name`. */
const importsOf = (file: string, name: string) =>
  [...readFileSync(file, "utf8").matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)]
    .filter((m) => m[1]!.split(",").some((s) => s.trim() === name))
    .map((m) => resolve(dirname(file), m[2]!));

describe("routing policy", () => {
  it("every request of a run is routed by the imported pickLeastLoaded", () => {
    const spy = vi.mocked(policy.pickLeastLoaded);
    spy.mockClear();
    const r = simulate({
      cluster: {
        model: findModel("llama-3-8b"),
        dtype: "fp8",
        gateways: 1,
        prices: choosePrices(catalog),
        topology: { kind: "disaggregated", prefill: { chip: h100, tp: 1, groups: 2, batch: 1 }, decode: { chip: h100, tp: 1, groups: 3, batch: 16 }, link: DEFAULT_KV_LINK },
      },
      arrivals: poissonArrivals(30, customWorkload(1024, 128), 60, seededRng(4)),
      slo: { ttftMs: 500, tpotMs: 50, percentile: 0.9 },
      seconds: 60,
      warmupSeconds: 0,
    }).summary;
    const picked = spy.mock.results.filter((x) => (x.value as policy.PickResult)._tag === "Picked").length;
    expect(r.requests.arrived).toBeGreaterThan(1000);
    expect(picked).toBe(r.requests.arrived); // one decision per request, all by the spy
    // The policy saw the workers the simulator built, with their live in-flight counts and batch capacities.
    const views = spy.mock.calls[0]![0];
    expect(views.map((v) => `${v.role}:${v.id}:${v.capacity}`)).toEqual(["prefill:p0:1", "prefill:p1:1", "decode:d0:16", "decode:d1:16", "decode:d2:16"]);
    // Under load (30 req/s on 2 prefill groups) some decisions found every worker at its cap: Saturated.
    expect(spy.mock.results.some((x) => (x.value as policy.PickResult)._tag === "Saturated")).toBe(true);
  });

  it("the gateway and the simulator import pickLeastLoaded from the same file, and src/sim defines none", () => {
    const source = resolve(root, "src/policy/least-loaded.ts");
    expect(importsOf(resolve(root, "actors/request/gateway.ts"), "pickLeastLoaded")).toEqual([source]);
    expect(importsOf(resolve(root, "src/sim/simulator.ts"), "pickLeastLoaded")).toEqual([source]);
    for (const f of readdirSync(resolve(root, "src/sim"))) {
      expect(readFileSync(resolve(root, "src/sim", f), "utf8")).not.toMatch(/(function|const)\s+pickLeastLoaded/);
    }
  });
});
