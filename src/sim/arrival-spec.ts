// Which arrival process a run uses, as data (so a goodput search can rebuild it at every rate).
import type { Workload } from "../planner/workloads.ts";
import { type ArrivalSource, burstyArrivals, poissonArrivals } from "./arrivals.ts";
import { agenticArrivals } from "./agentic.ts";
import { seededRng } from "./random.ts";
import { type TraceRecord, traceArrivals } from "./trace.ts";

export type ArrivalSpec =
  | { readonly kind: "poisson" }
  | { readonly kind: "bursty" }
  | { readonly kind: "agentic" }
  | { readonly kind: "trace"; readonly records: readonly TraceRecord[] };

/** The source for one run: `rate` requests/s (a trace is rescaled to it) until `until`, from `seed`. */
export function makeArrivals(spec: ArrivalSpec, rate: number, workload: Workload, until: number, seed: number): ArrivalSource {
  const rng = seededRng(seed);
  switch (spec.kind) {
    case "poisson":
      return poissonArrivals(rate, workload, until, rng);
    case "bursty":
      return burstyArrivals(rate, workload, until, rng);
    case "agentic":
      return agenticArrivals(rate, workload, until, rng);
    case "trace":
      return traceArrivals(spec.records, until, rate);
  }
}
