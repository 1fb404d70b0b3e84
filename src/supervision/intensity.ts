// Restart intensity: at most `maxRestarts` restarts within `period`, beyond which the supervisor gives up
// and escalates (OTP intensity/period). Pure sliding window over restart timestamps in Clock milliseconds.
import { Duration } from "effect";

export interface Intensity {
  readonly maxRestarts: number;
  readonly period: Duration.Input;
}

export interface WindowStep {
  /** Restart timestamps still inside the period, including this one. */
  readonly times: ReadonlyArray<number>;
  /** Restarts within the period counting this one. */
  readonly count: number;
  readonly exceeded: boolean;
}

export const periodMillis = (intensity: Intensity): number => Duration.toMillis(Duration.fromInputUnsafe(intensity.period));

export const recordRestart = (times: ReadonlyArray<number>, now: number, intensity: Intensity): WindowStep => {
  const since = now - periodMillis(intensity);
  const kept = [...times.filter((t) => t > since), now];
  return { times: kept, count: kept.length, exceeded: kept.length > intensity.maxRestarts };
};
