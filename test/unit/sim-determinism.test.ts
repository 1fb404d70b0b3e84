// Same seed → identical results, for every arrival process; a different seed → a different run.
import { describe, expect, it } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { findWorkload } from "../../src/planner/workloads.ts";
import { type ArrivalSpec, makeArrivals } from "../../src/sim/arrival-spec.ts";
import type { ClusterSpec } from "../../src/sim/cluster.ts";
import { simulate } from "../../src/sim/simulator.ts";
import { parseTrace } from "../../src/sim/trace.ts";

const catalog = loadAcceleratorCatalog();
const prices = choosePrices(catalog);
const model = findModel("llama-3-8b");
const workload = findWorkload("agentic");
const slo = { ttftMs: 750, tpotMs: 30, percentile: 0.9 };
const clusters: Record<string, ClusterSpec> = {
  disaggregated: {
    model,
    dtype: "fp8",
    gateways: 2,
    prices,
    topology: {
      kind: "disaggregated",
      prefill: { chip: findAccelerator(catalog, "nvidia-b200"), tp: 1, groups: 2, batch: 4 },
      decode: { chip: findAccelerator(catalog, "intel-gaudi3-hl325l"), tp: 1, groups: 4, batch: 64 },
      link: DEFAULT_KV_LINK,
    },
  },
  colocated: { model, dtype: "fp8", gateways: 1, prices, topology: { kind: "colocated", pool: { chip: findAccelerator(catalog, "nvidia-h100-sxm"), tp: 1, groups: 4, batch: 64 }, prefillBatch: 1 } },
};
const traceText = Array.from({ length: 1200 }, (_, i) => JSON.stringify({ time: i * 0.13 + (i % 7) * 0.05, input_tokens: 200 + ((i * 37) % 1800), output_tokens: 20 + ((i * 11) % 200) })).join("\n");
const trace: ArrivalSpec = { kind: "trace", records: parseTrace(traceText) };

const run = (cluster: ClusterSpec, spec: ArrivalSpec, seed: number) =>
  JSON.stringify(simulate({ cluster, arrivals: makeArrivals(spec, 10, workload, 120, seed), slo, seconds: 120 }).summary);

describe("simulator determinism", () => {
  for (const [name, cluster] of Object.entries(clusters)) {
    for (const spec of [{ kind: "poisson" }, { kind: "bursty" }, { kind: "agentic" }] as const) {
      it(`${name}, ${spec.kind}: the same seed gives identical results, another seed different ones`, () => {
        const a = run(cluster, spec, 42);
        expect(JSON.parse(a).requests.completed).toBeGreaterThan(100);
        expect(run(cluster, spec, 42)).toBe(a);
        expect(run(cluster, spec, 43)).not.toBe(a);
      });
    }
    it(`${name}, replayed trace: identical on every run`, () => {
      const a = run(cluster, trace, 1);
      expect(JSON.parse(a).requests.completed).toBeGreaterThan(100);
      expect(run(cluster, trace, 2)).toBe(a); // a trace has no randomness: the seed does not matter
    });
  }
});
