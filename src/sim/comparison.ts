// DistServe-style goodput comparison: for each family (colocated continuous batching on one chip, or a
// prefill chip : decode chip disaggregated pair) and each budget (an equal device count, or an equal $/hour),
// enumerate the configurations that spend the budget, rank them by capacity, search the goodput of the best few
// in the simulator and keep the highest. Ratios are taken against the colocated baseline under the same budget.
import { type AcceleratorCatalog, findAccelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import type { KvLink } from "../planner/kv-link.ts";
import { TP_CHOICES } from "../planner/search.ts";
import type { Slo } from "../planner/slo.ts";
import type { Workload } from "../planner/workloads.ts";
import { type ClusterSpec, deviceCount, describeTopology, type Topology, usdPerHour } from "./cluster.ts";
import { capacityEstimate, searchGoodput } from "./goodput.ts";
import { defaultDecodeBatch, defaultPrefillBatch } from "./pool-defaults.ts";

export interface Family {
  /** e.g. "colocated H100", "H100:H100", "B200:Gaudi 3". */
  readonly name: string;
  readonly kind: "disaggregated" | "colocated";
  readonly prefillChip: string;
  /** The decode chip, or the one chip of a colocated family. */
  readonly decodeChip: string;
}

export type Budget = { readonly kind: "devices"; readonly devices: number } | { readonly kind: "usd"; readonly usdPerHour: number };

export interface ComparisonContext {
  readonly catalog: AcceleratorCatalog;
  readonly model: ModelSpec;
  readonly dtype: Dtype;
  readonly workload: Workload;
  readonly slo: Slo;
  readonly link: KvLink;
  readonly prices: Readonly<Record<string, number>>;
  readonly seed: number;
  /** Configurations per family whose goodput is searched (the rest are ranked out by capacity). */
  readonly shortlist: number;
  readonly onProgress?: (line: string) => void;
  /** Goodput already searched, by configuration (equal-device and equal-cost budgets often share some). */
  readonly searched: Map<string, number>;
}

export interface ComparisonRow {
  readonly model: string;
  readonly workload: string;
  readonly budget: string;
  readonly family: string;
  readonly config: string | null;
  readonly devices: number;
  readonly usdPerHour: number;
  /** Requests/s at ≥ 90% SLO attainment (0: no configuration of the family meets the SLO). */
  readonly goodput: number;
  readonly goodputPerDevice: number;
  readonly goodputPerUsdHour: number;
  /** Simulated seconds spent on this row (0 when every configuration was already searched for another row). */
  readonly simulatedSeconds: number;
  readonly configurationsSearched: number;
}

const fitsBudget = (budget: Budget, devices: number, usd: number, cheapestStep: number) =>
  budget.kind === "devices" ? devices === budget.devices : usd <= budget.usdPerHour + 1e-9 && usd + cheapestStep > budget.usdPerHour + 1e-9;

/** Every configuration of the family that spends the budget exactly (devices) or leaves less than one more group ($). */
export function candidates(family: Family, budget: Budget, ctx: ComparisonContext): Topology[] {
  const price = (id: string) => {
    const p = ctx.prices[id];
    if (p === undefined) throw new RangeError(`no price for chip "${id}"`);
    return p;
  };
  const out: Topology[] = [];
  const maxGroups = 64;
  if (family.kind === "colocated") {
    const chip = findAccelerator(ctx.catalog, family.decodeChip);
    for (const tp of TP_CHOICES) {
      const bMax = defaultDecodeBatch(chip, ctx, tp);
      for (const batch of new Set([bMax, bMax / 2, bMax / 4].filter((b) => b >= 1))) {
        for (let n = 1; n <= maxGroups; n++) {
          if (fitsBudget(budget, n * tp, n * tp * price(chip.id), tp * price(chip.id))) out.push({ kind: "colocated", pool: { chip, tp, groups: n, batch }, prefillBatch: 1 });
        }
      }
    }
    return out;
  }
  const pChip = findAccelerator(ctx.catalog, family.prefillChip);
  const dChip = findAccelerator(ctx.catalog, family.decodeChip);
  for (const tpP of TP_CHOICES) {
    const bP = defaultPrefillBatch(pChip, ctx, tpP);
    if (bP === 0) continue;
    for (const tpD of TP_CHOICES) {
      const bD = defaultDecodeBatch(dChip, ctx, tpD);
      if (bD === 0) continue;
      const step = Math.min(tpP * price(pChip.id), tpD * price(dChip.id));
      for (let nP = 1; nP <= maxGroups; nP++) {
        for (let nD = 1; nD <= maxGroups; nD++) {
          const devices = nP * tpP + nD * tpD;
          const usd = nP * tpP * price(pChip.id) + nD * tpD * price(dChip.id);
          if (fitsBudget(budget, devices, usd, step)) {
            out.push({ kind: "disaggregated", prefill: { chip: pChip, tp: tpP, groups: nP, batch: bP }, decode: { chip: dChip, tp: tpD, groups: nD, batch: bD }, link: ctx.link });
          }
        }
      }
    }
  }
  return out;
}

const budgetLabel = (b: Budget) => (b.kind === "devices" ? `${b.devices} devices` : `$${b.usdPerHour.toFixed(2)}/h`);

/** The family's best goodput under the budget. */
export function bestGoodput(family: Family, budget: Budget, ctx: ComparisonContext): ComparisonRow {
  const spec = (topology: Topology): ClusterSpec => ({ model: ctx.model, dtype: ctx.dtype, topology, gateways: 1, prices: ctx.prices });
  const ranked = candidates(family, budget, ctx)
    .map((t) => ({ t, cap: capacityEstimate(spec(t), ctx.workload) }))
    .sort((a, b) => b.cap - a.cap)
    .slice(0, ctx.shortlist);
  let best: { t: Topology; goodput: number } | null = null;
  let simulated = 0;
  for (const { t, cap } of ranked) {
    const key = describeTopology(t);
    let goodput = ctx.searched.get(key);
    if (goodput === undefined) {
      const seconds = Math.min(1800, Math.max(120, (10 * ctx.workload.outputTokens * ctx.slo.tpotMs) / 1000, 3000 / cap));
      const r = searchGoodput({ cluster: spec(t), workload: ctx.workload, slo: ctx.slo, arrivals: { kind: "poisson" }, seconds, seed: ctx.seed });
      simulated += seconds * r.points.length;
      goodput = r.goodput;
      ctx.searched.set(key, goodput);
      ctx.onProgress?.(`${ctx.model.id} ${budgetLabel(budget)} ${family.name}: ${key} goodput ${goodput.toFixed(3)} req/s (${r.points.length} runs of ${seconds.toFixed(0)} s)`);
    }
    if (!best || goodput > best.goodput) best = { t, goodput };
  }
  const devices = best ? deviceCount(best.t) : 0;
  const usd = best ? usdPerHour(spec(best.t)) : 0;
  const g = best?.goodput ?? 0;
  return {
    model: ctx.model.id,
    workload: ctx.workload.id,
    budget: budgetLabel(budget),
    family: family.name,
    config: best ? describeTopology(best.t) : null,
    devices,
    usdPerHour: usd,
    goodput: g,
    goodputPerDevice: devices ? g / devices : 0,
    goodputPerUsdHour: usd ? g / usd : 0,
    simulatedSeconds: simulated,
    configurationsSearched: ranked.length,
  };
}

export interface ComparisonRatios {
  readonly model: string;
  readonly workload: string;
  readonly budget: string;
  readonly baseline: string;
  /** Family goodput ÷ baseline goodput under the same budget (null when the baseline has none). */
  readonly ratios: Readonly<Record<string, number | null>>;
}

export function ratiosAgainst(rows: readonly ComparisonRow[], baseline: string): ComparisonRatios {
  const base = rows.find((r) => r.family === baseline);
  if (!base) throw new RangeError(`baseline family "${baseline}" is not among the rows`);
  const ratios: Record<string, number | null> = {};
  for (const r of rows) if (r.family !== baseline) ratios[r.family] = base.goodput > 0 ? r.goodput / base.goodput : null;
  return { model: base.model, workload: base.workload, budget: base.budget, baseline, ratios };
}
