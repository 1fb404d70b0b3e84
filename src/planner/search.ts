// The planner's search: prefill chip × decode chip × tensor parallel × batch × group counts, plus colocated
// baselines per chip; keeps the cheapest configuration per chip pair, the Pareto frontier and baseline ratios.
import type { Accelerator, AcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { type DecodeOption, evaluateColocated, evaluateDisaggregated, type EvalContext, type PlanConfig, type PrefillOption, decodeOption, prefillOption } from "./evaluate.ts";

export const TP_CHOICES = [1, 2, 4, 8] as const;
export const PREFILL_BATCHES = [1, 2, 4, 8] as const;
/** Largest group count per pool the count search tries (the ratio nP:nD is searched, not assumed). */
export const MAX_GROUPS = 16;

export interface SearchResult {
  /** Cheapest configuration per pair id ("p:d" or "colocated:chip"). */
  readonly bestByPair: ReadonlyMap<string, PlanConfig>;
  /** Every SLO-feasible configuration kept for the frontier (best counts per option pair). */
  readonly candidates: readonly PlanConfig[];
  readonly winner: PlanConfig;
  readonly evaluated: number;
}

function decodeBatches(maxB: number): number[] {
  const out: number[] = [];
  for (let b = 1; b <= Math.min(maxB, 1024); b *= 2) out.push(b);
  return out;
}

export function prefillOptions(ctx: EvalContext, chips: readonly Accelerator[]): PrefillOption[] {
  const out: PrefillOption[] = [];
  for (const chip of chips) for (const tp of TP_CHOICES) for (const b of PREFILL_BATCHES) {
    const o = prefillOption(ctx, chip, tp, b);
    if (o) out.push(o);
  }
  return out;
}

export function decodeOptions(ctx: EvalContext, chips: readonly Accelerator[]): DecodeOption[] {
  const out: DecodeOption[] = [];
  for (const chip of chips) for (const tp of TP_CHOICES) for (const b of decodeBatches(1024)) {
    const o = decodeOption(ctx, chip, tp, b);
    if (o) out.push(o);
  }
  return out;
}

/** Chips with a price (the others cannot be costed and are left out). */
export function pricedChips(catalog: AcceleratorCatalog, prices: Readonly<Record<string, number>>, only?: readonly string[]): Accelerator[] {
  return catalog.accelerators.filter((a) => prices[a.id] !== undefined && (only === undefined || only.includes(a.id)));
}

export function search(ctx: EvalContext, chips: readonly Accelerator[]): SearchResult {
  const pOpts = prefillOptions(ctx, chips);
  const dOpts = decodeOptions(ctx, chips);
  const best = new Map<string, PlanConfig>();
  const candidates: PlanConfig[] = [];
  let evaluated = 0;
  const keep = (c: PlanConfig) => {
    const cur = best.get(c.pair);
    if (!cur || c.usdPerMtok < cur.usdPerMtok) best.set(c.pair, c);
  };
  for (const p of pOpts) for (const d of dOpts) {
    const rP = rateOfPrefill(ctx, p, d);
    evaluated++;
    if (!(rP > 0)) continue;
    let local: PlanConfig | null = null;
    for (let nD = 1; nD <= MAX_GROUPS; nD++) {
      // the prefill groups that just keep up with nD decode groups, and one fewer (prefill-bound)
      const ideal = Math.ceil((nD * d.rate) / rP);
      for (const nP of [ideal - 1, ideal]) {
        if (nP < 1 || nP > MAX_GROUPS) continue;
        const c = evaluateDisaggregated(ctx, p, d, nP, nD);
        evaluated++;
        if (c && (!local || c.usdPerMtok < local.usdPerMtok)) local = c;
      }
    }
    if (local) {
      keep(local);
      candidates.push(local);
    }
  }
  for (const chip of chips) for (const tp of TP_CHOICES) for (const b of decodeBatches(1024)) {
    const c = evaluateColocated(ctx, chip, tp, b);
    evaluated++;
    if (c) {
      keep(c);
      candidates.push(c);
    }
  }
  let winner: PlanConfig | undefined;
  for (const c of best.values()) if (!winner || c.usdPerMtok < winner.usdPerMtok) winner = c;
  if (!winner) throw new RangeError("no configuration meets the SLO on any priced chip");
  return { bestByPair: best, candidates, winner, evaluated };
}

/** Requests/s of one prefill group at the SLO-limited utilisation (from a 1×1 evaluation). */
function rateOfPrefill(ctx: EvalContext, p: PrefillOption, d: DecodeOption): number {
  const huge = evaluateDisaggregated(ctx, p, { ...d, rate: Number.POSITIVE_INFINITY }, 1, 1);
  if (!huge) return 0;
  return (huge.prefillUtilisation * p.batch) / p.seconds;
}

/** Pareto frontier of cost (lower better) vs interactivity (higher better), sorted by interactivity. */
export function paretoFrontier(configs: readonly PlanConfig[]): PlanConfig[] {
  const sorted = [...configs].sort((a, b) => b.interactivity - a.interactivity || a.usdPerMtok - b.usdPerMtok);
  const out: PlanConfig[] = [];
  let bestCost = Number.POSITIVE_INFINITY;
  for (const c of sorted) {
    if (c.usdPerMtok < bestCost) {
      out.push(c);
      bestCost = c.usdPerMtok;
    }
  }
  return out.reverse();
}

export interface DecodePoint {
  readonly chip: string;
  readonly tp: number;
  readonly batch: number;
  /** Decode-pool cost only, $ per million OUTPUT tokens (prefill excluded: this is the decode frontier). */
  readonly usdPerMtokOut: number;
  readonly interactivity: number;
}

/** Decode-only Pareto frontier (decode $/Mtok output vs tokens/s per user) over every decode option. */
export function decodeFrontier(ctx: EvalContext, chips: readonly Accelerator[]): DecodePoint[] {
  const pts: DecodePoint[] = decodeOptions(ctx, chips).map((d) => ({
    chip: d.chip.id,
    tp: d.tp,
    batch: d.batch,
    usdPerMtokOut: ((d.tp * (ctx.prices[d.chip.id] ?? Number.NaN)) / 3600 / (d.rate * ctx.workload.outputTokens)) * 1e6,
    interactivity: 1 / d.stepAvgS,
  }));
  const sorted = pts.sort((a, b) => b.interactivity - a.interactivity || a.usdPerMtokOut - b.usdPerMtokOut);
  const out: DecodePoint[] = [];
  let bestCost = Number.POSITIVE_INFINITY;
  for (const p of sorted) if (p.usdPerMtokOut < bestCost) { out.push(p); bestCost = p.usdPerMtokOut; }
  return out.reverse();
}
