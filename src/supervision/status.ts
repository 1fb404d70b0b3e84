// Observability: what a supervisor and its children are doing and how often each was restarted, kept in
// a Ref so `tandem status` (and tests) can read it while the tree runs.
import { Effect, Ref } from "effect";
import type { RestartType } from "./child-spec.ts";
import type { Strategy } from "./strategy.ts";

export type ChildState = "running" | "restarting" | "stopped";
export type SupervisorState = "idle" | "running" | "escalated" | "stopped";

export interface ChildStatus {
  readonly id: string;
  readonly restart: RestartType;
  readonly state: ChildState;
  /** Times this child was started again after its first start (cumulative over the supervisor's runs). */
  readonly restarts: number;
  readonly lastFailure?: string;
  /** Present when the child is itself a supervisor. */
  readonly supervisor?: SupervisorStatus;
}

export interface SupervisorStatus {
  readonly name: string;
  readonly strategy: Strategy;
  readonly state: SupervisorState;
  /** Restart decisions taken (one per child exit that triggered a restart). */
  readonly restartEvents: number;
  readonly children: ReadonlyArray<ChildStatus>;
}

type Own = Omit<SupervisorStatus, "children"> & { readonly children: ReadonlyArray<Omit<ChildStatus, "supervisor">> };

export interface StatusBoard {
  readonly read: Effect.Effect<Own>;
  readonly setState: (state: SupervisorState) => Effect.Effect<void>;
  readonly child: (id: string, patch: (c: Omit<ChildStatus, "supervisor">) => Omit<ChildStatus, "supervisor">) => Effect.Effect<void>;
  readonly restartEvent: Effect.Effect<void>;
}

export const makeStatusBoard = (
  name: string,
  strategy: Strategy,
  children: ReadonlyArray<{ readonly id: string; readonly restart: RestartType }>,
): StatusBoard => {
  const ref = Ref.makeUnsafe<Own>({
    name,
    strategy,
    state: "idle",
    restartEvents: 0,
    children: children.map((c) => ({ id: c.id, restart: c.restart, state: "stopped", restarts: 0 })),
  });
  return {
    read: Ref.get(ref),
    setState: (state) => Ref.update(ref, (s) => ({ ...s, state })),
    child: (id, patch) => Ref.update(ref, (s) => ({ ...s, children: s.children.map((c) => (c.id === id ? patch(c) : c)) })),
    restartEvent: Ref.update(ref, (s) => ({ ...s, restartEvents: s.restartEvents + 1 })),
  };
};

/** Restart counts by child id, the figure `tandem status` shows per worker. */
export const restartCounts = (status: SupervisorStatus): ReadonlyMap<string, number> =>
  new Map(status.children.map((c) => [c.id, c.restarts]));
