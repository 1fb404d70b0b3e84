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
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
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
  /** A sorted copy: the order of `Float64Array.prototype.sort` (−0 before +0), bit for bit. */
  sorted(): Float64Array {
    return sortDoubles(this.data.slice(0, this.length));
  }
}

/** Below this many values the built-in sort is as fast. */
const RADIX_MIN = 1 << 16;
const RADIX_BITS = 11;
const RADIX_PASSES = 6;

/**
 * Sorts `values` ascending as `Float64Array.prototype.sort` does, returning it or a new array: an LSD radix sort
 * (11-bit digits) on the IEEE-754 bits with the sign flipped for positive values and every bit flipped for
 * negative ones, which orders doubles as numbers, −0 before +0. A run's millions of latency samples sort in a
 * fraction of the built-in sort's time; digits every value shares (common in narrow distributions) cost one
 * counting pass only. Arrays holding NaN go to the built-in sort (it puts every NaN last).
 */
export function sortDoubles(values: Float64Array): Float64Array {
  const n = values.length;
  if (n < RADIX_MIN) return values.sort();
  for (let i = 0; i < n; i++) if (values[i] !== values[i]) return values.sort();
  const counts = new Uint32Array(RADIX_PASSES << RADIX_BITS);
  const words = new Uint32Array(values.buffer, values.byteOffset, 2 * n);
  for (let i = 0; i < n; i++) {
    const hiBits = words[2 * i + 1]!;
    const flip = hiBits >> 31; // −1 for negative values, 0 otherwise
    const lo = (words[2 * i]! ^ flip) >>> 0;
    const hi = (hiBits ^ (flip | 0x80000000)) >>> 0;
    counts[digit(lo, hi, 0)]!++;
    counts[(1 << RADIX_BITS) + digit(lo, hi, 1)]!++;
    counts[(2 << RADIX_BITS) + digit(lo, hi, 2)]!++;
    counts[(3 << RADIX_BITS) + digit(lo, hi, 3)]!++;
    counts[(4 << RADIX_BITS) + digit(lo, hi, 4)]!++;
    counts[(5 << RADIX_BITS) + digit(lo, hi, 5)]!++;
  }
  let from = values;
  let fromWords = words;
  let to: Float64Array | undefined;
  let toWords: Uint32Array | undefined;
  const offsets = new Uint32Array(1 << RADIX_BITS);
  for (let pass = 0; pass < RADIX_PASSES; pass++) {
    const base = pass << RADIX_BITS;
    let sum = 0;
    let single = false;
    for (let d = 0; d < 1 << RADIX_BITS; d++) {
      const c = counts[base + d]!;
      if (c === n) single = true;
      offsets[d] = sum;
      sum += c;
    }
    if (single) continue; // every value has this digit: the order stands
    if (to === undefined) {
      to = new Float64Array(n);
      toWords = new Uint32Array(to.buffer);
    }
    for (let i = 0; i < n; i++) {
      const hiBits = fromWords[2 * i + 1]!;
      const flip = hiBits >> 31;
      const d = digit((fromWords[2 * i]! ^ flip) >>> 0, (hiBits ^ (flip | 0x80000000)) >>> 0, pass);
      to[offsets[d]!++] = from[i]!;
    }
    const f = from;
    const fw = fromWords;
    from = to;
    fromWords = toWords!;
    to = f;
    toWords = fw;
  }
  return from;
}

/** Digit `pass` (least significant first) of the 64-bit key hi:lo, RADIX_BITS wide. */
const digit = (lo: number, hi: number, pass: number): number => {
  switch (pass) {
    case 0:
      return lo & 0x7ff;
    case 1:
      return (lo >>> 11) & 0x7ff;
    case 2:
      return (lo >>> 22) | ((hi & 0x1) << 10);
    case 3:
      return (hi >>> 1) & 0x7ff;
    case 4:
      return (hi >>> 12) & 0x7ff;
    default:
      return hi >>> 23;
  }
};

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
