// Agentic sessions: an agent makes many short calls one after another, each issued when the previous answer
// is back plus a tool-execution pause, with a context that grows call by call. Sessions start as a Poisson
// process; the calls inside a session are closed-loop (they wait for the cluster), so a slow cluster slows
// the agents down instead of piling up requests.
import type { Workload } from "../planner/workloads.ts";
import type { ArrivalSource } from "./arrivals.ts";
import { exponential, type Rng } from "./random.ts";

export interface AgenticShape {
  readonly callsPerSession: number;
  /** Mean tool-execution pause between a call's answer and the next call, seconds (exponential). */
  readonly meanToolSeconds: number;
}

export const DEFAULT_AGENTIC: AgenticShape = { callsPerSession: 8, meanToolSeconds: 1 };

/**
 * Call i of n has input workload.inputTokens · (0.5 + i/(n−1)) — the context grows linearly from half to 1.5x
 * the preset's mean, so the mean input is the preset's — and the preset's output length. Sessions start at
 * rate / callsPerSession so calls arrive at `rate` on average when the cluster keeps up.
 */
export function agenticArrivals(rate: number, workload: Workload, until: number, rng: Rng, shape: AgenticShape = DEFAULT_AGENTIC): ArrivalSource {
  if (!(rate > 0)) throw new RangeError(`arrival rate must be positive, got ${rate}`);
  const n = shape.callsPerSession;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`callsPerSession must be an integer ≥ 2, got ${n}`);
  const inputOf = (call: number) => Math.max(1, Math.round(workload.inputTokens * (0.5 + call / (n - 1))));
  let t = 0;
  let sessions = 0;
  return {
    next: () => {
      t += exponential(rng, n / rate);
      return t < until ? { time: t, inputTokens: inputOf(0), outputTokens: workload.outputTokens, session: sessions++, call: 0 } : null;
    },
    followUp: (done, finishedAt) => {
      const call = done.call + 1;
      if (done.session < 0 || call >= n) return null;
      const time = finishedAt + exponential(rng, shape.meanToolSeconds);
      return time < until ? { time, inputTokens: inputOf(call), outputTokens: workload.outputTokens, session: done.session, call } : null;
    },
  };
}
