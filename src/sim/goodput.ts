// Goodput (DistServe): the highest arrival rate at which at least `target` of requests meet both SLOs, found by
// running the simulator at a sequence of rates — bracket by doubling or halving from a capacity estimate, then
// bisect. Every run uses the same seed, so the rates differ only in the time scale of the same arrival pattern.
import type { Slo } from "../planner/slo.ts";
import type { Workload } from "../planner/workloads.ts";
import { type ArrivalSpec, makeArrivals } from "./arrival-spec.ts";
import type { ClusterSpec } from "./cluster.ts";
import type { SimSummary } from "./metrics.ts";
import { simulate } from "./simulator.ts";
import { stepTimes } from "./step-times.ts";

export const GOODPUT_TARGET = 0.9;

export interface RunPlan {
  readonly cluster: ClusterSpec;
  readonly workload: Workload;
  readonly slo: Slo;
  readonly arrivals: ArrivalSpec;
  readonly seconds: number;
  readonly seed: number;
}

export const runAtRate = (p: RunPlan, rate: number): SimSummary =>
  simulate({ cluster: p.cluster, arrivals: makeArrivals(p.arrivals, rate, p.workload, p.seconds, p.seed), slo: p.slo, seconds: p.seconds }).summary;

/**
 * Requests/s the cluster could finish with no SLO at all (an upper bound to start the search from): the slower
 * of its pools at full batches, from the performance model.
 */
export function capacityEstimate(cluster: ClusterSpec, workload: Workload): number {
  const { model, dtype, topology: t } = cluster;
  const { inputTokens: input, outputTokens: output } = workload;
  const ctx = input + output / 2;
  if (t.kind === "disaggregated") {
    const p = stepTimes(t.prefill.chip, model, t.prefill.tp, dtype);
    const d = stepTimes(t.decode.chip, model, t.decode.tp, dtype);
    const prefill = (t.prefill.groups * t.prefill.batch) / p.prefill(input, t.prefill.batch);
    const decode = (t.decode.groups * t.decode.batch) / (output * d.decode(t.decode.batch, t.decode.batch * ctx));
    return Math.min(prefill, decode);
  }
  const s = stepTimes(t.pool.chip, model, t.pool.tp, dtype);
  const perRequest = s.prefill(input, 1) + (output * s.decode(t.pool.batch, t.pool.batch * ctx)) / t.pool.batch;
  return t.pool.groups / perRequest;
}

export interface GoodputPoint {
  readonly rate: number;
  readonly attainment: number;
  readonly usdPerMtokWithinSlo: number;
}

export interface GoodputResult {
  /** Highest rate found meeting the target (0 when even the lowest rate tried misses it). */
  readonly goodput: number;
  readonly target: number;
  /** Every rate tried, in increasing order. */
  readonly points: readonly GoodputPoint[];
  /** The run at the goodput rate. */
  readonly atGoodput: SimSummary | null;
}

export interface GoodputOptions {
  readonly target?: number;
  /** Bisection steps after bracketing (each halves the bracket). */
  readonly iterations?: number;
  readonly onPoint?: (p: GoodputPoint) => void;
}

export function searchGoodput(plan: RunPlan, options: GoodputOptions = {}): GoodputResult {
  const target = options.target ?? GOODPUT_TARGET;
  const iterations = options.iterations ?? 8;
  const points: GoodputPoint[] = [];
  const runs = new Map<number, SimSummary>();
  const meets = (rate: number) => {
    const s = runAtRate(plan, rate);
    runs.set(rate, s);
    const point = { rate, attainment: s.sloAttainment, usdPerMtokWithinSlo: s.usdPerMtokWithinSlo };
    points.push(point);
    options.onPoint?.(point);
    return s.sloAttainment >= target;
  };
  let hi = capacityEstimate(plan.cluster, plan.workload);
  let lo = 0;
  if (meets(hi)) {
    lo = hi;
    for (let i = 0; i < 6 && meets((hi = lo * 2)); i++) lo = hi;
    if (lo === hi) hi = lo * 2; // met at every doubling: bisect up to twice the last rate met
  } else {
    for (let i = 0; i < 8; i++) {
      const r = hi / 2;
      if (meets(r)) {
        lo = r;
        break;
      }
      hi = r;
    }
  }
  if (lo > 0) {
    for (let i = 0; i < iterations; i++) {
      const mid = (lo + hi) / 2;
      if (meets(mid)) lo = mid;
      else hi = mid;
    }
  }
  points.sort((a, b) => a.rate - b.rate);
  return { goodput: lo, target, points, atGoodput: runs.get(lo) ?? null };
}
