// Each driver fault class triggers its policy in the supervised engine, on the real llama.cpp engine with a
// scripted fault schedule (fault N hits the N-th driver call): assert the counters and the health the worker
// advertises to routing.
import { Effect, type Scope } from "effect";
import { describe, expect, it } from "vitest";
import type { DriverFault, FaultClass } from "../../src/engine/engine.ts";
import { withInjectedFaults } from "../../src/engine/faults/fault-injecting-engine.ts";
import { scriptedFaultSchedule } from "../../src/engine/faults/fault-schedule.ts";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { type SupervisedEngine, superviseEngine } from "../../src/engine/supervised-engine.ts";
import { modelPath } from "../support/cluster.ts";

const run = <A>(body: (supervised: SupervisedEngine, quarantines: DriverFault[]) => Effect.Effect<A, unknown, Scope.Scope>, script: ReadonlyArray<{ call: number; faultClass: FaultClass }>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        // One schedule for the worker's life: a restarted driver keeps counting calls.
        const schedule = scriptedFaultSchedule("cpu", script);
        const quarantines: DriverFault[] = [];
        const supervised = yield* superviseEngine({
          start: makeLlamaCppEngine({ modelPath: modelPath() }).pipe(Effect.map((engine) => withInjectedFaults(engine, schedule))),
          onQuarantine: (fault) => Effect.sync(() => void quarantines.push(fault)),
          exit: (code) => {
            throw new Error(`the driver tier gave up with exit ${code}`);
          },
        });
        return yield* body(supervised, quarantines);
      }),
    ),
  );

const prompt = (s: SupervisedEngine) => s.engine.tokenize("Once upon a time");
/** Prefill (driver call), then export (driver call): the hand-over a prefill worker does. */
const prefillAndExport = (s: SupervisedEngine) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { sequence } = yield* s.engine.prefill(yield* prompt(s));
      return yield* sequence.exportKv;
    }),
  );

describe("supervised engine: each fault class triggers its policy", () => {
  it("transient: retried in place, the call succeeds, the worker keeps serving", async () => {
    const health = await run((s) => prefillAndExport(s).pipe(Effect.map(() => s.health())), [{ call: 1, faultClass: "transient" }]);
    expect(health).toMatchObject({ state: "serving", retriesInPlace: 1, driverRestarts: 0, shrinks: 0 });
    expect(health.faults.transient).toBe(1);
  });

  it("resource: the advertised batch shrinks by one, then the call is retried and succeeds", async () => {
    const [health, full] = await run(
      (s) => prefillAndExport(s).pipe(Effect.map(() => [s.health(), s.engine.info.sequences] as const)),
      [{ call: 1, faultClass: "resource" }],
    );
    expect(health).toMatchObject({ state: "serving", shrinks: 1, retriesInPlace: 1 });
    expect(health.capacity).toBe(full - 1);
  });

  it("interconnect: the KV export is sent again and counted as a re-routed transfer", async () => {
    const health = await run((s) => prefillAndExport(s).pipe(Effect.map(() => s.health())), [{ call: 2, faultClass: "interconnect" }]);
    expect(health).toMatchObject({ state: "serving", transferReroutes: 1, retriesInPlace: 1 });
  });

  it("device-reset: the call fails, the driver restarts under its supervisor and serves again", async () => {
    const result = await run(
      (s) =>
        Effect.gen(function* () {
          const failed = yield* Effect.flip(prefillAndExport(s));
          const during = s.health().state;
          const kv = yield* prefillAndExport(s); // waits for the new driver
          return { failed, during, after: s.health(), kvBytes: kv.length };
        }),
      [{ call: 1, faultClass: "device-reset" }],
    );
    expect(result.failed.faultClass).toBe("device-reset");
    expect(result.during).toBe("restarting");
    expect(result.after).toMatchObject({ state: "serving", driverRestarts: 1 });
    expect(result.kvBytes).toBeGreaterThan(0);
  });

  it("fatal: quarantined at once, alert raised once, every later call refused", async () => {
    const result = await run(
      (s, quarantines) =>
        Effect.gen(function* () {
          const first = yield* Effect.flip(prefillAndExport(s));
          const second = yield* Effect.flip(prefillAndExport(s));
          return { first, second, health: s.health(), alerts: quarantines.length };
        }),
      [{ call: 1, faultClass: "fatal" }],
    );
    expect(result.first.faultClass).toBe("fatal");
    expect(result.second).toBe(result.first);
    expect(result.health.state).toBe("quarantined");
    expect(result.alerts).toBe(1);
  });

  it("K faults in T: the fifth transient fault in the window quarantines the worker", async () => {
    const script = [1, 2, 3, 4, 5].map((call) => ({ call, faultClass: "transient" as const }));
    const result = await run(
      (s) =>
        Effect.gen(function* () {
          const exhausted = yield* Effect.flip(prefillAndExport(s)); // calls 1–4: three retries, then re-route
          const afterFour = s.health().state;
          yield* Effect.flip(prefillAndExport(s)); // call 5: the fifth in the window
          return { exhausted, afterFour, health: s.health() };
        }),
      script,
    );
    expect(result.exhausted.faultClass).toBe("transient");
    expect(result.afterFour).toBe("serving");
    expect(result.health.state).toBe("quarantined");
    expect(result.health.faults.transient).toBe(5);
  });

  it("a decode fault mid-stream is not retried in place: tokens already left, the request actor migrates it", async () => {
    const result = await run(
      (s) =>
        Effect.scoped(
          Effect.gen(function* () {
            const { sequence, firstToken } = yield* s.engine.prefill(yield* prompt(s));
            const streamed: number[] = [];
            const fault = yield* Effect.flip(sequence.decode(firstToken, 20, (t) => Effect.sync(() => void streamed.push(t))));
            return { fault, streamed: streamed.length, health: s.health() };
          }),
        ),
      [{ call: 2, faultClass: "transient" }],
    );
    expect(result.fault.faultClass).toBe("transient");
    expect(result.streamed).toBe(3);
    expect(result.health.retriesInPlace).toBe(0);
  });
});
