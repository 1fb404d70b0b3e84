// Request arrival processes: open-loop Poisson and bursty (a two-state Markov-modulated Poisson process).
// Replayed traces are in trace.ts and closed-loop agentic sessions in agentic.ts; all share ArrivalSource.
import type { Workload } from "../planner/workloads.ts";
import { exponential, type Rng } from "./random.ts";

export interface Arrival {
  readonly time: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Session (agentic) the call belongs to, -1 for independent requests. */
  readonly session: number;
  /** Index of the call within its session (0 for independent requests). */
  readonly call: number;
}

export interface ArrivalSource {
  /** The next open-loop arrival (non-decreasing times), or null once the source is exhausted. */
  next(): Arrival | null;
  /** A closed-loop follow-up issued because `done` finished at `finishedAt` (agentic sessions), else null. */
  followUp(done: Arrival, finishedAt: number): Arrival | null;
}

/** The `followUp` of open-loop sources: the simulator need not keep their arrivals until the requests finish. */
export const noFollowUp = (): null => null;

/** Poisson arrivals at `rate` requests/s with the workload's lengths, for times in [0, until). */
export function poissonArrivals(rate: number, workload: Workload, until: number, rng: Rng): ArrivalSource {
  if (!(rate > 0)) throw new RangeError(`arrival rate must be positive, got ${rate}`);
  let t = 0;
  return {
    next: () => {
      t += exponential(rng, 1 / rate);
      return t < until ? { time: t, inputTokens: workload.inputTokens, outputTokens: workload.outputTokens, session: -1, call: 0 } : null;
    },
    followUp: noFollowUp,
  };
}

export interface Burstiness {
  /** Share of all arrivals that come in the "on" phase (0.5 = plain Poisson). */
  readonly onShare: number;
  /** Mean length of each phase, seconds (exponentially distributed). */
  readonly meanPhaseSeconds: number;
}

/** 80% of the traffic in half of the time, in phases of 10 s on average: the rate swings 1.6x ↔ 0.4x of the mean. */
export const DEFAULT_BURSTINESS: Burstiness = { onShare: 0.8, meanPhaseSeconds: 10 };

/**
 * Bursty arrivals with mean `rate`: a Markov-modulated Poisson process alternating "on" (rate·2·onShare) and
 * "off" (rate·2·(1 − onShare)) phases of equal mean length. Memorylessness lets a gap that crosses a phase
 * boundary restart from the boundary at the new phase's rate.
 */
export function burstyArrivals(rate: number, workload: Workload, until: number, rng: Rng, b: Burstiness = DEFAULT_BURSTINESS): ArrivalSource {
  if (!(rate > 0)) throw new RangeError(`arrival rate must be positive, got ${rate}`);
  if (!(b.onShare >= 0.5 && b.onShare < 1)) throw new RangeError(`onShare must be in [0.5, 1), got ${b.onShare}`);
  const rates = [2 * rate * b.onShare, 2 * rate * (1 - b.onShare)];
  let phase = rng() < 0.5 ? 0 : 1;
  let phaseEnd = exponential(rng, b.meanPhaseSeconds);
  let t = 0;
  return {
    next: () => {
      while (true) {
        const candidate = t + exponential(rng, 1 / rates[phase]!);
        if (candidate <= phaseEnd) {
          t = candidate;
          break;
        }
        t = phaseEnd;
        phase = 1 - phase;
        phaseEnd = t + exponential(rng, b.meanPhaseSeconds);
      }
      return t < until ? { time: t, inputTokens: workload.inputTokens, outputTokens: workload.outputTokens, session: -1, call: 0 } : null;
    },
    followUp: noFollowUp,
  };
}
