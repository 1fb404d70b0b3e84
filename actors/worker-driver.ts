// A worker's engine driver under its supervisor (src/engine/supervised-engine.ts), with this process's wiring:
// seeded fault injection from the environment (TANDEM_FAULT_RATES + TANDEM_FAULT_SEED, or TANDEM_FAULT_SCRIPT),
// every fault and its decision logged, and a quarantine announced on events.alert.
import { Effect, type Scope } from "effect";
import type { DriverFault, Engine } from "../src/engine/engine.ts";
import { withInjectedFaults } from "../src/engine/faults/fault-injecting-engine.ts";
import { type FaultSchedule, faultScheduleFromEnv } from "../src/engine/faults/fault-schedule.ts";
import { superviseEngine } from "../src/engine/supervised-engine.ts";
import { AlertEvent, type Subjects } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { type NatsClient, tell } from "../src/transport/nats-client.ts";

export const superviseWorkerEngine = <R>(id: string, subjects: Subjects, driver: Effect.Effect<Engine, DriverFault, R | Scope.Scope>) =>
  Effect.gen(function* () {
    const log = yield* Log;
    const context = yield* Effect.context<R | NatsClient>();
    // One schedule for the process's life, so a restarted driver continues the same seeded sequence.
    let schedule: FaultSchedule | undefined;
    const start = driver.pipe(
      Effect.map((engine) => {
        schedule ??= faultScheduleFromEnv(engine.info.vendor, process.env);
        if (schedule === undefined) return engine;
        log.info({ seed: schedule.seed, vendor: schedule.vendor }, "fault injection on");
        return withInjectedFaults(engine, schedule);
      }),
      Effect.provideContext(context),
    );
    return yield* superviseEngine({
      start,
      onFault: (fault, decision) =>
        Effect.sync(() =>
          log.warn({ vendor: fault.vendor, code: fault.code, faultClass: fault.faultClass, action: decision.action }, decision.reason)
        ),
      onQuarantine: (fault, decision) =>
        Effect.sync(() => log.error({ vendor: fault.vendor, code: fault.code }, `quarantined: ${decision.reason}`)).pipe(
          Effect.andThen(
            tell(subjects.events("alert"), AlertEvent, {
              _tag: "AlertEvent",
              workerId: id,
              vendor: fault.vendor,
              code: fault.code,
              faultClass: fault.faultClass,
              reason: decision.reason,
            }),
          ),
          Effect.ignore,
          Effect.provideContext(context),
        ),
    });
  });
