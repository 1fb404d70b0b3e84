// Backoff between restarts comes from an Effect Schedule stepped against the Clock (so TestClock drives
// it). When the schedule ends its last delay is kept, so it behaves as a cap rather than a stop.
import { Clock, Duration, Effect, Pull, Schedule } from "effect";

export type BackoffSchedule = Schedule.Schedule<unknown, unknown>;

/** 100 ms, 200 ms, 400 ms … capped at 10 s. */
export const defaultBackoff: BackoffSchedule = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("10 seconds")]);

export interface Backoff {
  /** The delay before the next restart. */
  readonly next: Effect.Effect<Duration.Duration>;
  /** Start the schedule over (after a quiet period). */
  readonly reset: Effect.Effect<void>;
}

export const makeBackoff = (schedule: BackoffSchedule): Effect.Effect<Backoff> =>
  Effect.gen(function* () {
    let step = yield* Schedule.toStep(schedule);
    let attempt = 0;
    let last = Duration.zero;
    const next = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis;
      const delay = yield* step(now, attempt++).pipe(
        Effect.map(([, d]) => d),
        Pull.catchDone(() => Effect.succeed(last)),
      );
      last = delay;
      return delay;
    });
    const reset = Schedule.toStep(schedule).pipe(
      Effect.map((fresh) => {
        step = fresh;
        attempt = 0;
        last = Duration.zero;
      }),
    );
    return { next, reset };
  });
