// The KV memory limit: a decode group never holds more KV tokens than fit next to the weights, whatever its
// batch slots allow; the limit binds under load; a sequence that can never fit is an error, not a hang.
import { describe, expect, it } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { memoryFit } from "../../src/hardware/performance-model.ts";
import { DEFAULT_KV_LINK } from "../../src/planner/kv-link.ts";
import { choosePrices } from "../../src/planner/pricing.ts";
import { customWorkload } from "../../src/planner/workloads.ts";
import { admitFromQueue } from "../../src/policy/batch-admission.ts";
import { poissonArrivals } from "../../src/sim/arrivals.ts";
import type { ClusterSpec, Topology } from "../../src/sim/cluster.ts";
import { seededRng } from "../../src/sim/random.ts";
import { SimError, simulate } from "../../src/sim/simulator.ts";

const catalog = loadAcceleratorCatalog();
const prices = choosePrices(catalog);
const h100 = findAccelerator(catalog, "nvidia-h100-sxm");
const b200 = findAccelerator(catalog, "nvidia-b200");
const model = findModel("llama-3-70b");
const slo = { ttftMs: 5000, tpotMs: 100, percentile: 0.9 };
const workload = customWorkload(8192, 512);
const cluster = (topology: Topology): ClusterSpec => ({ model, dtype: "fp8", gateways: 1, prices, topology });
const run = (topology: Topology, rate: number) =>
  simulate({ cluster: cluster(topology), arrivals: poissonArrivals(rate, workload, 300, seededRng(9)), slo, seconds: 300 }).summary;

describe("KV memory limit", () => {
  it("admitFromQueue stops at the first request that does not fit (slots or tokens), head of line", () => {
    const limits = { maxSequences: 4, maxTokens: 100 };
    const tokens = [30, 30, 50, 10];
    expect(admitFromQueue({ sequences: 0, tokens: 0 }, limits, 4, (i) => tokens[i]!)).toBe(2);
    expect(admitFromQueue({ sequences: 3, tokens: 0 }, limits, 4, (i) => tokens[i]!)).toBe(1);
    expect(admitFromQueue({ sequences: 0, tokens: 80 }, limits, 4, (i) => tokens[i]!)).toBe(0);
    expect(admitFromQueue({ sequences: 0, tokens: 0 }, limits, 1, () => 101)).toBe(0);
  });

  it("a decode group with 1024 slots holds only what its HBM allows, and the limit binds under load", () => {
    const topology: Topology = {
      kind: "disaggregated",
      prefill: { chip: b200, tp: 1, groups: 4, batch: 1 },
      decode: { chip: h100, tp: 2, groups: 1, batch: 1024 },
      link: DEFAULT_KV_LINK,
    };
    const r = run(topology, 6);
    const decode = r.pools.find((p) => p.role === "decode")!;
    const fit = memoryFit(h100, model, 1, 1, { tp: 2, dtype: "fp8" });
    expect(decode.kvTokenBudget).toBe(fit.maxBatch);
    expect(decode.peakKvTokens).toBeLessThanOrEqual(decode.kvTokenBudget);
    expect(decode.peakKvTokens).toBeGreaterThan(0.9 * decode.kvTokenBudget);
    const perSequence = workload.inputTokens + workload.outputTokens;
    expect(decode.peakSequences).toBe(Math.floor(decode.kvTokenBudget / perSequence));
    expect(decode.peakSequences).toBeLessThan(decode.maxSequences);
  });

  it("colocated groups reserve memory before their prefill, within the same limit", () => {
    const r = run({ kind: "colocated", pool: { chip: h100, tp: 2, groups: 2, batch: 1024 }, prefillBatch: 1 }, 4);
    const pool = r.pools[0]!;
    expect(pool.peakKvTokens).toBeLessThanOrEqual(pool.kvTokenBudget);
    expect(pool.peakKvTokens).toBeGreaterThan(0.9 * pool.kvTokenBudget);
  });

  it("a sequence that can never fit is a SimError, not a silent hang", () => {
    const topology: Topology = {
      kind: "disaggregated",
      prefill: { chip: b200, tp: 1, groups: 1, batch: 1 },
      decode: { chip: h100, tp: 1, groups: 1, batch: 8 }, // 70B fp8 weights leave ~1.4 GB: ~8K tokens of KV
      link: DEFAULT_KV_LINK,
    };
    const attempt = () => simulate({ cluster: cluster(topology), arrivals: poissonArrivals(1, customWorkload(16_000, 64), 60, seededRng(1)), slo, seconds: 60 });
    expect(attempt).toThrow(SimError);
    expect(attempt).toThrow(/does not fit in the KV memory of a nvidia-h100-sxm TP1 decode group/);
  });
});
