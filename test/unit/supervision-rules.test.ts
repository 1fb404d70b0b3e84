import { Effect, Exit, Schedule, Duration } from "effect";
import { TestClock } from "effect/testing";
import { describe, expect, it } from "vitest";
import { affectedChildren, makeBackoff, recordRestart, shouldRestart } from "../../src/supervision/index.ts";

describe("supervision rules", () => {
  it("strategies pick the failed child (one_for_one), all (one_for_all), or it and later ones in start order (rest_for_one)", () => {
    const order = ["a", "b", "c", "d"];
    expect(affectedChildren("one_for_one", order, "b")).toEqual(["b"]);
    expect(affectedChildren("one_for_all", order, "b")).toEqual(["a", "b", "c", "d"]);
    expect(affectedChildren("rest_for_one", order, "b")).toEqual(["b", "c", "d"]);
  });

  it("the intensity window counts only restarts inside the period and is exceeded past maxRestarts", () => {
    const intensity = { maxRestarts: 2, period: "1 second" } as const;
    const one = recordRestart([], 0, intensity);
    const two = recordRestart(one.times, 500, intensity);
    const three = recordRestart(two.times, 900, intensity);
    expect([one.exceeded, two.exceeded, three.exceeded, three.count]).toEqual([false, false, true, 3]);
    const later = recordRestart(two.times, 1_400, intensity); // the restart at 0 has left the window
    expect([later.count, later.exceeded]).toEqual([2, false]);
  });

  it("restart types: permanent always, transient only after an abnormal exit (not a normal end or interrupt), temporary never", () => {
    const ok = Exit.succeed(1);
    const failed = Exit.fail("x");
    const interrupted = Exit.interrupt(1);
    expect([ok, failed, interrupted].map((e) => shouldRestart("permanent", e))).toEqual([true, true, true]);
    expect([ok, failed, interrupted].map((e) => shouldRestart("transient", e))).toEqual([false, true, false]);
    expect([ok, failed, interrupted].map((e) => shouldRestart("temporary", e))).toEqual([false, false, false]);
  });

  it("backoff follows the schedule, holds its last delay when the schedule ends, and restarts from the base on reset", async () => {
    const delays = await Effect.runPromise(
      Effect.gen(function* () {
        const backoff = yield* makeBackoff(Schedule.exponential("100 millis").pipe(Schedule.upTo({ times: 3 })));
        const out: number[] = [];
        for (let i = 0; i < 5; i++) out.push(Duration.toMillis(yield* backoff.next));
        yield* backoff.reset;
        out.push(Duration.toMillis(yield* backoff.next));
        return out;
      }).pipe(Effect.provide(TestClock.layer())),
    );
    expect(delays).toEqual([100, 200, 400, 400, 400, 100]);
  });
});
