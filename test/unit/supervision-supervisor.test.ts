import { Clock, Effect, Exit, Fiber, Schedule } from "effect";
import { TestClock } from "effect/testing";
import { describe, expect, it } from "vitest";
import { child, makeSupervisor, runTopSupervisor, SupervisorEscalated } from "../../src/supervision/index.ts";

const runTest = <A, E>(program: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(program.pipe(Effect.provide(TestClock.layer())));

/** Advance the TestClock in small steps until the fiber is done (or the step budget runs out). */
const drive = <A, E>(fiber: Fiber.Fiber<A, E>, stepMillis = 50, maxSteps = 2_000) =>
  Effect.gen(function* () {
    for (let i = 0; i < maxSteps && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(stepMillis);
    return yield* Fiber.await(fiber);
  });

/** Advance the TestClock by `millis` in small steps, letting children and backoff sleeps progress. */
const advance = (millis: number, stepMillis = 50) =>
  Effect.gen(function* () {
    for (let t = 0; t < millis; t += stepMillis) yield* TestClock.adjust(stepMillis);
  });

/** Records every start (id and Clock time) and every interruption, in order. */
const recorder = () => {
  const starts: Array<{ id: string; at: number }> = [];
  const stops: string[] = [];
  const count = (id: string) => starts.filter((s) => s.id === id).length;
  const track = <A, E>(id: string, body: (attempt: number) => Effect.Effect<A, E>) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis;
      starts.push({ id, at });
      return yield* body(count(id));
    }).pipe(Effect.onInterrupt(() => Effect.sync(() => stops.push(id))));
  return { starts, stops, count, track };
};

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure");
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail");
  if (reason === undefined || reason._tag !== "Fail") throw new Error("expected a typed failure");
  return reason.error;
};

describe("supervisor", () => {
  it("escalates with a typed SupervisorEscalated (name, child id, restart count) once intensity is exceeded, stopping siblings", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_one",
      intensity: { maxRestarts: 3, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: [
        child("steady", rec.track("steady", () => Effect.never)),
        child("flaky", rec.track("flaky", () => Effect.fail("boom"))),
      ],
    });
    const { exit, counts, status } = await runTest(
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(sup.run);
        const exit = yield* drive(fiber);
        return { exit, counts: yield* sup.restartCounts, status: yield* sup.status };
      }),
    );
    const error = failure(exit);
    expect(error).toBeInstanceOf(SupervisorEscalated);
    expect(error).toMatchObject({ _tag: "SupervisorEscalated", supervisor: "pool", childId: "flaky", restarts: 4, periodMillis: 10_000 });
    expect(rec.count("flaky")).toBe(4); // first start + 3 allowed restarts
    expect(counts.get("flaky")).toBe(3);
    expect(counts.get("steady")).toBe(0);
    expect(rec.stops).toEqual(["steady"]); // the sibling is stopped before escalating
    expect(status.state).toBe("escalated");
    expect(status.restartEvents).toBe(3);
  });

  it("forgets restarts older than the period, so failures spaced wider than it never escalate", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_one",
      intensity: { maxRestarts: 1, period: "1 second" },
      backoff: Schedule.spaced("100 millis"),
      children: [
        child(
          "slow-fail",
          rec.track("slow-fail", (n) => Effect.sleep("2 seconds").pipe(Effect.andThen(n <= 5 ? Effect.fail("boom") : Effect.void))),
          "transient",
        ),
      ],
    });
    const { exit, counts } = await runTest(
      Effect.gen(function* () {
        const exit = yield* Effect.forkChild(sup.run).pipe(Effect.flatMap((f) => drive(f)));
        return { exit, counts: yield* sup.restartCounts };
      }),
    );
    expect(Exit.isSuccess(exit)).toBe(true);
    expect(rec.count("slow-fail")).toBe(6);
    expect(counts.get("slow-fail")).toBe(5);
  });

  it("one_for_all: one child failing restarts every sibling (each started exactly twice)", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_all",
      intensity: { maxRestarts: 3, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: [
        child("a", rec.track("a", () => Effect.never)),
        child("b", rec.track("b", (n) => (n === 1 ? Effect.sleep("1 second").pipe(Effect.andThen(Effect.fail("boom"))) : Effect.never))),
        child("c", rec.track("c", () => Effect.never)),
      ],
    });
    const { counts, status } = await runTest(
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(sup.run);
        yield* advance(3_000);
        const counts = yield* sup.restartCounts;
        const status = yield* sup.status;
        yield* Fiber.interrupt(fiber);
        return { counts, status };
      }),
    );
    expect([rec.count("a"), rec.count("b"), rec.count("c")]).toEqual([2, 2, 2]);
    expect([...counts]).toEqual([["a", 1], ["b", 1], ["c", 1]]);
    expect(rec.stops).toEqual(["c", "a", "c", "b", "a"]); // siblings stopped newest first, then the whole tree on shutdown
    expect(status.restartEvents).toBe(1);
    expect(status.children.every((c) => c.state === "running")).toBe(true);
  });

  it("rest_for_one: restarts the failed child and those started after it, stopping newest first and starting in start order", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "rest_for_one",
      intensity: { maxRestarts: 3, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: ["a", "b", "c", "d"].map((id) =>
        child(id, rec.track(id, (n) => (id === "b" && n === 1 ? Effect.sleep("1 second").pipe(Effect.andThen(Effect.fail("boom"))) : Effect.never))),
      ),
    });
    const counts = await runTest(
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(sup.run);
        yield* advance(3_000);
        const counts = yield* sup.restartCounts;
        yield* Fiber.interrupt(fiber);
        return counts;
      }),
    );
    expect(rec.starts.map((s) => s.id)).toEqual(["a", "b", "c", "d", "b", "c", "d"]);
    expect(rec.stops.slice(0, 2)).toEqual(["d", "c"]);
    expect(rec.starts.slice(4).map((s) => s.at)).toEqual([1_100, 1_100, 1_100]); // after the 100 ms backoff
    expect([...counts]).toEqual([["a", 0], ["b", 1], ["c", 1], ["d", 1]]);
  });

  it("backoff grows per the schedule: Clock gaps between restarts are 100, 200, 400 ms then capped at 500 ms", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_one",
      intensity: { maxRestarts: 5, period: "1 minute" },
      backoff: Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("500 millis")]),
      children: [child("crashy", rec.track("crashy", () => Effect.fail("boom")))],
    });
    const exit = await runTest(Effect.forkChild(sup.run).pipe(Effect.flatMap((f) => drive(f))));
    const times = rec.starts.map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps).toEqual([100, 200, 400, 500, 500]);
    expect(failure(exit)).toMatchObject({ childId: "crashy", restarts: 6 });
  });

  it("transient children that end normally are not restarted, transient failures are, temporary children never are", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_all",
      intensity: { maxRestarts: 3, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: [
        child("transient-ok", rec.track("transient-ok", () => Effect.sleep("1 second")), "transient"),
        child("temporary", rec.track("temporary", () => Effect.sleep("2 seconds").pipe(Effect.andThen(Effect.fail("boom")))), "temporary"),
        child("transient-fail", rec.track("transient-fail", (n) => Effect.sleep("3 seconds").pipe(Effect.andThen(n === 1 ? Effect.fail("boom") : Effect.void))), "transient"),
      ],
    });
    const { exit, counts } = await runTest(
      Effect.gen(function* () {
        const exit = yield* Effect.forkChild(sup.run).pipe(Effect.flatMap((f) => drive(f)));
        return { exit, counts: yield* sup.restartCounts };
      }),
    );
    expect(Exit.isSuccess(exit)).toBe(true); // supervisor ends once nothing is left to run
    expect([rec.count("transient-ok"), rec.count("temporary"), rec.count("transient-fail")]).toEqual([1, 1, 2]);
    expect([...counts]).toEqual([["transient-ok", 0], ["temporary", 0], ["transient-fail", 1]]);
  });

  it("one_for_all does not bring back a temporary sibling it had to stop", async () => {
    const rec = recorder();
    const sup = makeSupervisor({
      name: "pool",
      strategy: "one_for_all",
      intensity: { maxRestarts: 3, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: [
        child("temporary", rec.track("temporary", () => Effect.never), "temporary"),
        child("worker", rec.track("worker", (n) => (n === 1 ? Effect.sleep("1 second").pipe(Effect.andThen(Effect.fail("boom"))) : Effect.never))),
      ],
    });
    await runTest(
      Effect.gen(function* () {
        const fiber = yield* Effect.forkChild(sup.run);
        yield* advance(2_000);
        yield* Fiber.interrupt(fiber);
      }),
    );
    expect([rec.count("temporary"), rec.count("worker")]).toEqual([1, 2]);
    expect(rec.stops[0]).toBe("temporary");
  });

  it("nested supervisors escalate upward: the pool's escalation is its parent's child failure, and the parent escalates in turn", async () => {
    const rec = recorder();
    const pool = makeSupervisor({
      name: "pool",
      strategy: "one_for_one",
      intensity: { maxRestarts: 2, period: "10 seconds" },
      backoff: Schedule.spaced("100 millis"),
      children: [child("worker", rec.track("worker", () => Effect.fail("driver fault")))],
    });
    const node = makeSupervisor({
      name: "node",
      strategy: "one_for_one",
      intensity: { maxRestarts: 1, period: "1 minute" },
      backoff: Schedule.spaced("1 second"),
      children: [pool.asChild()],
    });
    const { exit, status } = await runTest(
      Effect.gen(function* () {
        const exit = yield* Effect.forkChild(node.run).pipe(Effect.flatMap((f) => drive(f)));
        return { exit, status: yield* node.status };
      }),
    );
    const error = failure(exit);
    expect(error).toMatchObject({ _tag: "SupervisorEscalated", supervisor: "node", childId: "pool", restarts: 2 });
    expect(error.reason).toContain("supervisor pool escalated");
    expect(rec.count("worker")).toBe(6); // two pool incarnations × (first start + 2 restarts)
    expect(status.children[0]).toMatchObject({ id: "pool", restarts: 1 });
    expect(status.children[0]!.supervisor).toMatchObject({ name: "pool", state: "escalated" });
    expect(status.children[0]!.supervisor!.children[0]).toMatchObject({ id: "worker", restarts: 4 });
  });
});

describe("top supervisor", () => {
  it("logs and exits non-zero through the injected exit when the root escalates", async () => {
    const codes: number[] = [];
    const root = makeSupervisor({
      name: "node",
      strategy: "one_for_one",
      intensity: { maxRestarts: 0, period: "1 second" },
      children: [child("worker", Effect.fail("boom"))],
    });
    const code = await runTest(runTopSupervisor(root, { exit: (c) => codes.push(c) }));
    expect(code).toBe(1);
    expect(codes).toEqual([1]);
  });

  it("does not exit when the tree stops normally", async () => {
    const codes: number[] = [];
    const root = makeSupervisor({
      name: "node",
      strategy: "one_for_one",
      intensity: { maxRestarts: 0, period: "1 second" },
      children: [child("job", Effect.void, "transient")],
    });
    const code = await runTest(runTopSupervisor(root, { exit: (c) => codes.push(c) }));
    expect(code).toBe(0);
    expect(codes).toEqual([]);
  });
});
