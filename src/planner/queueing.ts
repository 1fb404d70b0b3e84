// Queueing margins the colocated closed form needs beyond slo.ts's single-server tail (found by the
// simulator cross-check, test/unit/sim-planner-crosscheck.test.ts):
//   - a colocated request holds one of `batch` sequence slots from the start of its prefill to its last token,
//     so at high occupancy of a small batch it first WAITS FOR A SLOT: the M/M/c (Erlang C) waiting-time
//     tail P(W > t) = C(c, a)·e^{−(c/h − λ)t}, solved for its p-quantile;
//   - its TPOT depends on how many prefills land while it decodes: a Poisson count with mean λ·L, whose
//     p-quantile (normal approximation) must fit in the TPOT slack, not just its mean.

/** Erlang C: probability an arrival waits, with c servers at offered load a = λ·h (a < c). */
export function erlangC(c: number, a: number): number {
  if (a <= 0) return 0;
  if (a >= c) return 1;
  let b = 1; // Erlang B by the stable recursion B(k) = a·B(k−1) / (k + a·B(k−1))
  for (let k = 1; k <= c; k++) b = (a * b) / (k + a * b);
  return (c * b) / (c - a * (1 - b));
}

/** p-quantile of the wait for one of c slots each held h seconds, at λ arrivals/s (M/M/c). */
export function slotWaitPercentile(c: number, holdS: number, rate: number, p: number): number {
  const a = rate * holdS;
  if (a >= c) return Number.POSITIVE_INFINITY;
  const wait = erlangC(c, a);
  return Math.max(0, Math.log(wait / (1 - p))) / (c / holdS - rate);
}

/** Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile level must be in (0, 1), got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/**
 * Largest Poisson mean m whose p-quantile stays within k events (normal approximation m + z·√m ≤ k):
 * √m = (−z + √(z² + 4k)) / 2.
 */
export function poissonMeanWithin(k: number, p: number): number {
  if (k <= 0) return 0;
  const z = normalQuantile(p);
  const root = (-z + Math.sqrt(z * z + 4 * k)) / 2;
  return Math.max(0, root) ** 2;
}
