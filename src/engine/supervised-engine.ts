// The engine-driver tier of the supervision tree. A worker talks to this Engine; behind it runs one driver
// incarnation at a time under a supervisor. Every driver fault goes through the class policy (faults/policy.ts):
// transient faults are retried in place, resource faults shrink the advertised batch and retry, a device reset
// restarts the driver (its KV is gone: in-flight calls fail and their requests migrate), a fatal fault — or too
// many faults in the window — quarantines the worker (out of routing, alert raised). A driver that needs
// restarting too often escalates, and the worker process exits non-zero for its pool to restart it.
import { Clock, Data, Deferred, Effect, Scope } from "effect";
import { makeSupervisor, child, runTopSupervisor, type Intensity } from "../supervision/index.ts";
import type { DriverFault, Engine, FaultClass, LiveSequence } from "./engine.ts";
import { decide, DEFAULT_QUARANTINE, FAULT_CLASSES, type FaultDecision, type QuarantineRule } from "./faults/policy.ts";

export type DriverHealthState = "serving" | "restarting" | "quarantined";

export interface DriverHealth {
  readonly state: DriverHealthState;
  readonly faults: Readonly<Record<FaultClass, number>>;
  /** Calls retried on the same driver (transient, resource, interconnect). */
  readonly retriesInPlace: number;
  /** Times the advertised batch was shrunk after a resource fault. */
  readonly shrinks: number;
  /** Interconnect faults answered by sending the KV again. */
  readonly transferReroutes: number;
  readonly driverRestarts: number;
  /** Sequences to advertise now (the engine's own count unless shrunk). */
  readonly capacity: number;
}

export interface SupervisedEngine {
  readonly engine: Engine;
  readonly health: () => DriverHealth;
}

export interface SupervisedEngineOptions {
  /** Starts one driver incarnation; its Scope closing releases the device. */
  readonly start: Effect.Effect<Engine, DriverFault, Scope.Scope>;
  readonly quarantine?: QuarantineRule;
  /** Driver restarts allowed before the worker gives up (the process exits 1). */
  readonly intensity?: Intensity;
  /** Called once when the worker is quarantined. */
  readonly onQuarantine: (fault: DriverFault, decision: FaultDecision) => Effect.Effect<void>;
  /** Called for every fault with the decision taken (for logs). */
  readonly onFault?: (fault: DriverFault, decision: FaultDecision) => Effect.Effect<void>;
  /** Exit of the process when the driver tier gives up; defaults to process.exit. */
  readonly exit?: (code: number) => void;
}

class RestartRequested extends Data.TaggedError("RestartRequested")<{ readonly reason: string }> {}

/** How long a shrunk batch stays shrunk before the full count is advertised again. */
const SHRINK_COOLDOWN_MS = 30_000;
const DEFAULT_INTENSITY: Intensity = { maxRestarts: 3, period: "60 seconds" };

interface Incarnation {
  readonly engine: Deferred.Deferred<Engine>;
  /** Completed when this incarnation is being torn down: its in-flight calls fail with the fault that did it. */
  readonly stopping: Deferred.Deferred<never, DriverFault>;
  /** The fault that ended this incarnation, once it has ended. */
  endedBy: DriverFault | undefined;
}

export const superviseEngine = (options: SupervisedEngineOptions): Effect.Effect<SupervisedEngine, never, Scope.Scope> =>
  Effect.gen(function* () {
    const rule = options.quarantine ?? DEFAULT_QUARANTINE;
    const faults = Object.fromEntries(FAULT_CLASSES.map((c) => [c, 0])) as Record<FaultClass, number>;
    let state: DriverHealthState = "restarting";
    let retriesInPlace = 0;
    let shrinks = 0;
    let transferReroutes = 0;
    let starts = 0;
    let shrunk: { capacity: number; until: number } | undefined;
    let quarantinedBy: DriverFault | undefined;
    const recent: number[] = [];
    const fresh = (): Incarnation => ({ engine: Deferred.makeUnsafe<Engine>(), stopping: Deferred.makeUnsafe<never, DriverFault>(), endedBy: undefined });
    let current = fresh();

    const driver = Effect.scoped(
      Effect.gen(function* () {
        const incarnation = current;
        const engine = yield* options.start;
        starts++;
        state = quarantinedBy === undefined ? "serving" : "quarantined";
        yield* Deferred.succeed(incarnation.engine, engine);
        const fault = yield* Deferred.await(incarnation.stopping).pipe(Effect.flip);
        return yield* Effect.fail(new RestartRequested({ reason: `${fault.vendor}/${fault.code}` }));
      }),
    );
    const tree = makeSupervisor({
      name: "worker",
      strategy: "one_for_one",
      intensity: options.intensity ?? DEFAULT_INTENSITY,
      children: [child("engine-driver", driver)],
    });
    yield* Effect.forkScoped(runTopSupervisor(tree, options.exit === undefined ? {} : { exit: options.exit }));
    const first = yield* Deferred.await(current.engine);

    const restartDriver = (fault: DriverFault) =>
      Effect.gen(function* () {
        if (state === "restarting") return;
        state = "restarting";
        const old = current;
        old.endedBy = fault;
        current = fresh();
        yield* Deferred.fail(old.stopping, fault);
      });

    const capacity = (now: number) => (shrunk !== undefined && now < shrunk.until ? shrunk.capacity : first.info.sequences);

    /** Runs `call` on the current driver under the fault policy; `inPlace` says whether the call may be repeated. */
    const guarded = <A, R>(call: (engine: Engine, incarnation: Incarnation) => Effect.Effect<A, DriverFault, R>, inPlace: boolean) =>
      Effect.gen(function* () {
        for (let attempt = 0;; attempt++) {
          if (quarantinedBy !== undefined) return yield* Effect.fail(quarantinedBy);
          const incarnation = current;
          const engine = yield* Deferred.await(incarnation.engine);
          const outcome = yield* call(engine, incarnation).pipe(
            Effect.raceFirst(Deferred.await(incarnation.stopping)),
            Effect.result,
          );
          if (outcome._tag === "Success") return outcome.success;
          const fault = outcome.failure;
          const now = yield* Clock.currentTimeMillis;
          const decision = decide(fault, { now, recentFaults: recent, attempt }, rule);
          faults[fault.faultClass]++;
          if (decision.countsTowardQuarantine) recent.push(now);
          while (recent.length > 0 && recent[0]! <= now - rule.windowMs) recent.shift();
          yield* options.onFault?.(fault, decision) ?? Effect.void;
          if (decision.quarantine) {
            if (quarantinedBy === undefined) {
              quarantinedBy = fault;
              state = "quarantined";
              yield* options.onQuarantine(fault, decision);
            }
            return yield* Effect.fail(fault);
          }
          if (decision.restartDriver) {
            yield* restartDriver(fault);
            return yield* Effect.fail(fault);
          }
          if (decision.shrinkBatch) {
            shrinks++;
            shrunk = { capacity: Math.max(1, capacity(now) - 1), until: now + SHRINK_COOLDOWN_MS };
          }
          if (!decision.retry || !inPlace) return yield* Effect.fail(fault);
          if (decision.rerouteTransfer) transferReroutes++;
          retriesInPlace++;
          yield* Effect.sleep(decision.delayMs);
        }
      });

    const wrapSequence = (sequence: LiveSequence, incarnation: Incarnation): LiveSequence => ({
      get length() {
        return sequence.length;
      },
      // A sequence lives on one incarnation: once that driver is gone its KV is gone, so no retry elsewhere.
      exportKv: guarded((_, now) => (now === incarnation ? sequence.exportKv : Effect.fail(lostWith(incarnation))), true),
      decode: (token, maxNewTokens, onToken) =>
        guarded((_, now) => (now === incarnation ? sequence.decode(token, maxNewTokens, onToken) : Effect.fail(lostWith(incarnation))), false),
    });
    const lostWith = (incarnation: Incarnation): DriverFault => incarnation.endedBy ?? quarantinedBy!;

    const engine: Engine = {
      get info() {
        return first.info;
      },
      counters: Effect.suspend(() => Deferred.await(current.engine)).pipe(Effect.flatMap((e) => e.counters)),
      tokenize: (text) => first.tokenize(text),
      detokenize: (tokens, previous) => first.detokenize(tokens, previous),
      prefill: (tokens) =>
        guarded(
          (e, incarnation) =>
            e.prefill(tokens).pipe(Effect.map(({ sequence, firstToken }) => ({ sequence: wrapSequence(sequence, incarnation), firstToken }))),
          true,
        ),
      importKv: (bytes) => guarded((e, incarnation) => e.importKv(bytes).pipe(Effect.map((s) => wrapSequence(s, incarnation))), true),
      generate: (tokens, maxTokens, onToken) => guarded((e) => e.generate(tokens, maxTokens, onToken), false),
    };

    const health = (): DriverHealth => ({
      state,
      faults: { ...faults },
      retriesInPlace,
      shrinks,
      transferReroutes,
      driverRestarts: Math.max(0, starts - 1),
      capacity: capacity(Date.now()),
    });
    return { engine, health };
  });
