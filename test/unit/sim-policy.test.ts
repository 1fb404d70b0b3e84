// The simulator places requests with the live gateway's policy function and parameters — the same module, not a
// copy: with the module replaced by a spy, every placement of a run goes through it with the gateway's policy
// (DEFAULT_MAX_LOAD, kvMoveCost), and the gateway imports the same file.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { customWorkload } from "../../src/planner/workloads.ts";
import { kvMoveCost } from "../../src/policy/kv-move-cost.ts";
import { DEFAULT_MAX_LOAD, type PickResult } from "../../src/policy/least-loaded.ts";
import * as placement from "../../src/policy/placement.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import { seededRng } from "../../src/sim/random.ts";
import { simulate } from "../../src/sim/simulator.ts";

vi.mock("../../src/policy/placement.ts", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/policy/placement.ts")>();
  return { ...real, placeRequest: vi.fn(real.placeRequest) };
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
  it("every request of a run is placed by the imported placeRequest, with the gateway's policy", () => {
    const spy = vi.mocked(placement.placeRequest);
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
    const picked = spy.mock.results.filter((x) => (x.value as PickResult)._tag === "Picked").length;
    expect(r.requests.arrived).toBeGreaterThan(1000);
    expect(picked).toBe(r.requests.arrived); // one decision per request, all by the spy
    // The policy saw the workers the simulator built, with their live in-flight counts and batch capacities.
    const [views, , request, , policy] = spy.mock.calls[0]!;
    expect(views.map((v) => `${v.role}:${v.id}:${v.capacity}`)).toEqual(["prefill:p0:1", "prefill:p1:1", "decode:d0:16", "decode:d1:16", "decode:d2:16"]);
    expect(views.filter((v) => v.role === "decode").every((v) => v.kvCapacityTokens! > 0 && v.kvFreeTokens !== undefined)).toBe(true);
    expect(request.kvTokens).toBe(1024 + 128);
    expect(policy).toEqual({ maxLoad: DEFAULT_MAX_LOAD, translationCost: kvMoveCost });
    // Under load (30 req/s on 2 prefill groups) some decisions found every worker at its cap: Saturated.
    expect(spy.mock.results.some((x) => (x.value as PickResult)._tag === "Saturated")).toBe(true);
  });

  it("the gateway and the simulator import placeRequest and kvMoveCost from the same files, and src/sim defines neither", () => {
    for (const [name, file] of [["placeRequest", "src/policy/placement.ts"], ["kvMoveCost", "src/policy/kv-move-cost.ts"]] as const) {
      const source = resolve(root, file);
      expect(importsOf(resolve(root, "actors/request/gateway.ts"), name)).toEqual([source]);
      expect(importsOf(resolve(root, "src/sim/simulator.ts"), name)).toEqual([source]);
      for (const f of readdirSync(resolve(root, "src/sim"))) {
        expect(readFileSync(resolve(root, "src/sim", f), "utf8")).not.toMatch(new RegExp(`(function|const)\\s+${name}\\b`));
      }
    }
  });
});
