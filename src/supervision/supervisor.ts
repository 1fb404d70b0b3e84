// A supervisor runs its children in its own Scope (a FiberMap), watches their exits and restarts them by
// strategy, intensity and backoff; past the intensity it stops every child and fails with
// SupervisorEscalated, so a parent supervisor sees it as one of its children failing.
import { Cause, Duration, Effect, Exit, Fiber, FiberMap } from "effect";
import { makeBackoff, defaultBackoff, type BackoffSchedule } from "./backoff.ts";
import { isAbnormal, shouldRestart, type ChildSpec, type RestartType } from "./child-spec.ts";
import { escalated, type SupervisorEscalated } from "./errors.ts";
import { periodMillis, recordRestart, type Intensity } from "./intensity.ts";
import { makeStatusBoard, restartCounts, type SupervisorStatus } from "./status.ts";
import { affectedChildren, type Strategy } from "./strategy.ts";

export interface SupervisorOptions<R> {
  readonly name: string;
  readonly strategy: Strategy;
  /** OTP's default is 1 restart in 5 s; pick per tier. */
  readonly intensity: Intensity;
  /** Delay before each restart; resets once a whole period passes without restarts. */
  readonly backoff?: BackoffSchedule;
  /** In start order; stopped in reverse order. */
  readonly children: ReadonlyArray<ChildSpec<R>>;
}

export interface Supervisor<R> {
  readonly name: string;
  /** Ends normally once no child is left running; fails only by escalating. */
  readonly run: Effect.Effect<void, SupervisorEscalated, R>;
  /** This supervisor and, recursively, any supervisors among its children. */
  readonly status: Effect.Effect<SupervisorStatus>;
  readonly restartCounts: Effect.Effect<ReadonlyMap<string, number>>;
  /** This supervisor as a child spec of a parent supervisor. */
  readonly asChild: (restart?: RestartType) => ChildSpec<R>;
}

const firstLine = (cause: Cause.Cause<unknown>): string => Cause.pretty(cause).split("\n")[0] ?? "";

export const makeSupervisor = <R>(options: SupervisorOptions<R>): Supervisor<R> => {
  const ids = options.children.map((c) => c.id);
  if (new Set(ids).size !== ids.length) throw new Error(`supervisor ${options.name}: duplicate child ids in ${ids.join(", ")}`);
  const board = makeStatusBoard(options.name, options.strategy, options.children);
  const period = periodMillis(options.intensity);

  const run: Effect.Effect<void, SupervisorEscalated, R> = Effect.scoped(
    Effect.gen(function* () {
      const fibers = yield* FiberMap.make<string, unknown, unknown>();
      const backoff = yield* makeBackoff(options.backoff ?? defaultBackoff);
      /** Children that may still run, in start order (temporary ones leave once they stop). */
      let specs: ReadonlyArray<ChildSpec<R>> = options.children;
      const running = new Map<string, Fiber.Fiber<unknown, unknown>>();
      let window: ReadonlyArray<number> = [];

      const start = (spec: ChildSpec<R>, isRestart: boolean) =>
        FiberMap.run(fibers, spec.id, spec.start).pipe(
          Effect.tap((fiber) =>
            Effect.sync(() => running.set(spec.id, fiber)).pipe(
              Effect.andThen(board.child(spec.id, (c) => ({ ...c, state: "running", restarts: c.restarts + (isRestart ? 1 : 0) }))),
            ),
          ),
        );
      const stop = (id: string) =>
        FiberMap.remove(fibers, id).pipe(
          Effect.andThen(Effect.sync(() => running.delete(id))),
          Effect.andThen(board.child(id, (c) => ({ ...c, state: "stopped" }))),
        );
      const stopAllRunning = Effect.suspend(() => Effect.forEach([...specs].reverse().filter((s) => running.has(s.id)), (s) => stop(s.id), { discard: true }));
      const nextExit = Effect.suspend(() =>
        Effect.raceAllFirst([...running].map(([id, fiber]) => Fiber.await(fiber).pipe(Effect.map((exit) => ({ id, exit }))))),
      );

      // Closing the scope (a parent stopping us, interruption) stops children newest first, as OTP shuts down.
      yield* Effect.addFinalizer(() => stopAllRunning);
      yield* board.setState("running");
      for (const spec of specs) yield* start(spec, false);

      while (running.size > 0) {
        const { id, exit } = yield* nextExit;
        running.delete(id);
        const spec = specs.find((s) => s.id === id)!;
        const failure = isAbnormal(exit) && Exit.isFailure(exit) ? firstLine(exit.cause) : undefined;
        yield* board.child(id, (c) => ({ ...c, state: "stopped", ...(failure === undefined ? {} : { lastFailure: failure }) }));
        if (!shouldRestart(spec.restart, exit)) {
          if (spec.restart === "temporary") specs = specs.filter((s) => s.id !== id);
          continue;
        }

        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis);
        const step = recordRestart(window, now, options.intensity);
        window = step.times;
        if (step.exceeded) {
          yield* stopAllRunning;
          yield* board.setState("escalated");
          return yield* escalated({
            supervisor: options.name,
            childId: id,
            restarts: step.count,
            periodMillis: period,
            reason: failure ?? "exited normally",
          });
        }
        yield* board.restartEvent;
        if (step.count === 1) yield* backoff.reset;

        // Siblings the strategy takes down with the failed child: stop them newest first.
        const affected = new Set(affectedChildren(options.strategy, specs.map((s) => s.id), id));
        const siblings = specs.filter((s) => s.id !== id && affected.has(s.id) && running.has(s.id));
        for (const s of [...siblings].reverse()) yield* stop(s.id);
        specs = specs.filter((s) => s.id === id || !siblings.includes(s) || s.restart !== "temporary");
        const toStart = specs.filter((s) => s.id === id || siblings.includes(s));
        for (const s of toStart) yield* board.child(s.id, (c) => ({ ...c, state: "restarting" }));

        const delay = yield* backoff.next;
        if (Duration.toMillis(delay) > 0) yield* Effect.sleep(delay);
        for (const s of toStart) yield* start(s, true);
      }
      yield* board.setState("stopped");
    }),
  ).pipe(Effect.onInterrupt(() => board.setState("stopped")));

  const status: Effect.Effect<SupervisorStatus> = Effect.gen(function* () {
    const own = yield* board.read;
    const children = yield* Effect.forEach(own.children, (c) => {
      const nested = options.children.find((s) => s.id === c.id)?.status;
      return nested === undefined ? Effect.succeed(c) : nested.pipe(Effect.map((supervisor) => ({ ...c, supervisor })));
    });
    return { ...own, children };
  });

  return {
    name: options.name,
    run,
    status,
    restartCounts: Effect.map(status, restartCounts),
    asChild: (restart = "permanent") => ({ id: options.name, start: run, restart, status }),
  };
};
