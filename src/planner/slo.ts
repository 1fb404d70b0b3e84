// Service-level objectives and the queueing margin that turns a mean service time into a percentile.
// TTFT_p = s · (1 + max(0, ln(ρ / (1 − p))) / (1 − ρ)): the M/M/1 waiting-time tail P(W > t) = ρ·e^{−(1−ρ)t/s}
// solved for the p-quantile, plus the service itself. The planner runs each pool at the highest ρ meeting it.
export interface Slo {
  readonly ttftMs: number;
  /** Per-request mean time between output tokens (DistServe's TPOT), bounded at the request's longest context. */
  readonly tpotMs: number;
  /** Percentile in (0, 1), e.g. 0.9. */
  readonly percentile: number;
}

export const DEFAULT_SLOS: Readonly<Record<string, Slo>> = {
  "prefill-heavy": { ttftMs: 3000, tpotMs: 50, percentile: 0.9 },
  "decode-heavy": { ttftMs: 1000, tpotMs: 50, percentile: 0.9 },
  chat: { ttftMs: 500, tpotMs: 50, percentile: 0.9 },
  rag: { ttftMs: 1500, tpotMs: 50, percentile: 0.9 },
  agentic: { ttftMs: 750, tpotMs: 30, percentile: 0.9 },
};

export const DEFAULT_SLO: Slo = { ttftMs: 1000, tpotMs: 50, percentile: 0.9 };

/** Utilisation never planned above this (headroom for bursts the M/M/1 tail does not see). */
export const MAX_UTILISATION = 0.9;

/** p-quantile of sojourn time (wait + service) of an M/M/1-tail queue with service s at utilisation rho. */
export function percentileSojourn(serviceS: number, rho: number, p: number): number {
  if (rho <= 0) return serviceS;
  if (rho >= 1) return Number.POSITIVE_INFINITY;
  return serviceS * (1 + Math.max(0, Math.log(rho / (1 - p))) / (1 - rho));
}

/** Highest utilisation (≤ MAX_UTILISATION) at which service + queueing at the percentile ≤ budget; 0 if none. */
export function maxUtilisation(serviceS: number, budgetS: number, p: number): number {
  if (serviceS > budgetS) return 0;
  if (percentileSojourn(serviceS, MAX_UTILISATION, p) <= budgetS) return MAX_UTILISATION;
  let lo = 0;
  let hi = MAX_UTILISATION;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (percentileSojourn(serviceS, mid, p) <= budgetS) lo = mid;
    else hi = mid;
  }
  return lo;
}
