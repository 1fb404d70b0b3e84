// What a run measures, over a window [warmup, end of arrivals): TTFT and TPOT distributions of the requests
// that arrived in it, SLO attainment (both met; unfinished requests count as misses), completed throughput,
// time-averaged utilisation, decode batch occupancy and requests in the system, and the cost per token.
import type { Slo } from "../planner/slo.ts";

export interface Distribution {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentile (p in [0, 1]) of an ascending array. */
export const sortedPercentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;

export function distribution(sorted: Float64Array): Distribution {
  let sum = 0;
  for (const v of sorted) sum += v;
  const n = sorted.length;
  return {
    count: n,
    mean: n ? sum / n : Number.NaN,
    p50: sortedPercentile(sorted, 0.5),
    p90: sortedPercentile(sorted, 0.9),
    p99: sortedPercentile(sorted, 0.99),
    max: n ? sorted[n - 1]! : Number.NaN,
  };
}

/** Length of [a, b) ∩ [w0, w1). */
export const overlap = (a: number, b: number, w0: number, w1: number): number => Math.max(0, Math.min(b, w1) - Math.max(a, w0));

/** A growable list of doubles. */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = v;
  }
  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

export interface PoolUsage {
  readonly role: "prefill" | "decode" | "colocated";
  readonly chip: string;
  readonly groups: number;
  readonly tp: number;
  /** Fraction of the window the pool's groups were computing (a prefill forward or a decode step). */
  readonly utilisation: number;
  /** Decode-capable pools: time-averaged running sequences ÷ batch slots. */
  readonly occupancy: number | null;
  /** Largest KV tokens any group of the pool held reserved, and what one group can hold. */
  readonly peakKvTokens: number;
  readonly kvTokenBudget: number;
  readonly peakSequences: number;
  readonly maxSequences: number;
}

export interface SimSummary {
  readonly cluster: string;
  readonly devices: number;
  readonly usdPerHour: number;
  readonly slo: Slo;
  readonly window: { readonly start: number; readonly end: number };
  /** Simulated time at which the run stopped (end of arrivals + drain). */
  readonly endTime: number;
  readonly events: number;
  readonly requests: { readonly arrived: number; readonly completed: number; readonly unfinished: number };
  readonly offeredRate: number;
  readonly ttftS: Distribution;
  readonly tpotS: Distribution;
  readonly latencyS: Distribution;
  /** Share of the window's arrivals that met both TTFT and TPOT (unfinished ones did not). */
  readonly sloAttainment: number;
  /** Completed inside the window (by completion time): requests/s and tokens (input + output)/s. */
  readonly throughput: { readonly requestsPerS: number; readonly tokensPerS: number };
  /** Time-averaged requests in the system (arrived, not finished) over the window. */
  readonly meanInSystem: number;
  readonly pools: readonly PoolUsage[];
  readonly meanKvTransferS: number | null;
  /** Cluster $ over the window ÷ tokens completed in it. */
  readonly usdPerMtok: number;
  /** Cluster $ over the window ÷ tokens of the window's arrivals that met the SLO (scaled to the window). */
  readonly usdPerMtokWithinSlo: number;
}

export interface SimSamples {
  readonly ttftS: Float64Array;
  readonly tpotS: Float64Array;
}

export interface SimResult {
  readonly summary: SimSummary;
  readonly samples: SimSamples;
}
