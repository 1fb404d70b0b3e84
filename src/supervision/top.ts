// The top of the tree: when the root supervisor escalates there is no parent left, so log it and exit the
// process non-zero for the orchestrator (systemd, Kubernetes, compose) to restart. The exit is injectable.
import process from "node:process";
import { Cause, Effect, Exit } from "effect";
import type { Supervisor } from "./supervisor.ts";

export interface TopOptions {
  /** Called with 1 when the tree gives up; defaults to process.exit. */
  readonly exit?: (code: number) => void;
}

/** Runs the root supervisor; returns the exit code it chose (0 when the tree stopped normally or was interrupted). */
export const runTopSupervisor = <R>(root: Supervisor<R>, options: TopOptions = {}): Effect.Effect<number, never, R> => {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  return root.run.pipe(
    Effect.exit,
    Effect.flatMap((result) => {
      if (Exit.isSuccess(result) || Cause.hasInterruptsOnly(result.cause)) return Effect.succeed(0);
      const escalation = result.cause.reasons.find(Cause.isFailReason)?.error;
      const message = escalation?._tag === "SupervisorEscalated" ? escalation.message : Cause.pretty(result.cause);
      return Effect.logError(`top supervisor ${root.name} gave up: ${message}`).pipe(
        Effect.andThen(Effect.sync(() => exit(1))),
        Effect.as(1),
      );
    }),
  );
};
