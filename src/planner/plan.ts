// One call that runs the whole plan (prices → search → frontier → baseline ratios → break-evens); used by
// `tandem plan`, the tests and docs/economics.md so they all report the same numbers.
import type { AcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import type { PlanConfig } from "./evaluate.ts";
import { DEFAULT_KV_LINK, type KvLink } from "./kv-link.ts";
import { choosePrices, type PricePoint, type Prices, type TcoInputs } from "./pricing.ts";
import { paretoFrontier, pricedChips, search } from "./search.ts";
import { type BreakEven, breakEvenPrices } from "./sensitivity.ts";
import type { Slo } from "./slo.ts";
import type { Workload } from "./workloads.ts";

export const H100 = "nvidia-h100-sxm";
export const B200 = "nvidia-b200";
export const GAUDI3 = "intel-gaudi3-hl325l";

export interface PlanInput {
  readonly catalog: AcceleratorCatalog;
  readonly model: ModelSpec;
  readonly workload: Workload;
  readonly slo: Slo;
  readonly link?: KvLink;
  readonly dtype?: Dtype;
  readonly pricePoint?: PricePoint;
  readonly priceOverrides?: Prices;
  /** The ownership-cost inputs when `pricePoint` is "tco". */
  readonly tco?: TcoInputs;
  /** Restrict to these chip ids (default: every chip with a price). */
  readonly chips?: readonly string[];
}

export interface PlanOutput {
  readonly prices: Readonly<Record<string, number>>;
  readonly winner: PlanConfig;
  readonly bestByPair: readonly PlanConfig[];
  readonly frontier: readonly PlanConfig[];
  /** Baseline cost ÷ config cost (> 1: the config is cheaper), keyed by baseline name. */
  readonly ratios: Readonly<Record<string, { baseline: string; usdPerMtok: number | null; winnerAdvantage: number | null }>>;
  readonly breakEvens: readonly BreakEven[];
  readonly evaluated: number;
  readonly all: readonly PlanConfig[];
}

export function plan(input: PlanInput): PlanOutput {
  const prices = choosePrices(input.catalog, input.pricePoint ?? "mid", input.priceOverrides ?? {}, input.tco);
  const chips = pricedChips(input.catalog, prices, input.chips);
  const ctx = { model: input.model, workload: input.workload, slo: input.slo, link: input.link ?? DEFAULT_KV_LINK, dtype: input.dtype ?? "fp8", prices };
  const r = search(ctx, chips);
  const best = [...r.bestByPair.values()].sort((a, b) => a.usdPerMtok - b.usdPerMtok);
  const ratio = (pair: string) => {
    const c = r.bestByPair.get(pair);
    return { baseline: pair, usdPerMtok: c ? c.usdPerMtok : null, winnerAdvantage: c ? c.usdPerMtok / r.winner.usdPerMtok : null };
  };
  const ratios: Record<string, ReturnType<typeof ratio>> = {
    "H100:H100": ratio(`${H100}:${H100}`),
    "B200:B200": ratio(`${B200}:${B200}`),
  };
  for (const c of chips) ratios[`colocated ${c.id}`] = ratio(`colocated:${c.id}`);
  return {
    prices,
    winner: r.winner,
    bestByPair: best,
    frontier: paretoFrontier(r.candidates),
    ratios,
    breakEvens: breakEvenPrices(best, prices),
    evaluated: r.evaluated,
    all: r.candidates,
  };
}

/** Cost ratio baseline ÷ config between two pairs of one plan (null when either is infeasible). */
export function pairRatio(out: PlanOutput, baselinePair: string, pair: string): number | null {
  const a = out.bestByPair.find((c) => c.pair === baselinePair);
  const b = out.bestByPair.find((c) => c.pair === pair);
  return a && b ? a.usdPerMtok / b.usdPerMtok : null;
}
