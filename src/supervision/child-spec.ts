// A child spec says what a supervisor runs and when it brings it back (the OTP child_spec idea, reduced
// to what Tandem's node → pools → workers → engine-driver tree needs).
import { Cause, Exit } from "effect";
import type { Effect } from "effect";
import type { SupervisorStatus } from "./status.ts";

/** permanent: always restarted; transient: restarted only after an abnormal exit; temporary: never. */
export type RestartType = "permanent" | "transient" | "temporary";

export interface ChildSpec<R = never> {
  readonly id: string;
  /** Runs until the child ends or fails; a supervisor's own `run` is a valid start effect. */
  readonly start: Effect.Effect<unknown, unknown, R>;
  readonly restart: RestartType;
  /** Set when the child is itself a supervisor, so status can show the whole tree. */
  readonly status?: Effect.Effect<SupervisorStatus>;
}

export const child = <R>(id: string, start: Effect.Effect<unknown, unknown, R>, restart: RestartType = "permanent"): ChildSpec<R> => ({
  id,
  start,
  restart,
});

/** Abnormal = failed or died; an exit that is only interruption counts as a normal shutdown. */
export const isAbnormal = (exit: Exit.Exit<unknown, unknown>): boolean =>
  Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause);

export const shouldRestart = (restart: RestartType, exit: Exit.Exit<unknown, unknown>): boolean =>
  restart === "permanent" || (restart === "transient" && isAbnormal(exit));
