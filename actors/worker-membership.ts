// Prefill and decode workers register the same way: their engine's description, a live load figure, the host,
// the engine's prompt counters, for decode workers the KV they can still take (free sequences × context), and,
// when the engine runs under its driver supervisor, the driver's health (serving, restarting, quarantined) and
// fault counts.
import { hostname } from "node:os";
import { Effect } from "effect";
import type { Engine, EngineCounters } from "../src/engine/engine.ts";
import type { DriverHealth } from "../src/engine/supervised-engine.ts";
import type { Subjects, WorkerRole } from "../src/protocol/index.ts";
import { registerMember } from "../src/transport/membership.ts";

export const registerWorker = (
  subjects: Subjects,
  heartbeatMs: number,
  id: string,
  role: WorkerRole,
  engine: Engine,
  inFlight: () => number,
  extra: { readonly kvTcp?: string } = {},
  driverHealth?: () => DriverHealth,
) =>
  Effect.gen(function* () {
    // The record is built synchronously each heartbeat; the engine's counters are read just as often.
    let counters: EngineCounters = { promptTokens: 0, promptTokensEvaluated: 0, promptTokensReused: 0 };
    const readCounters = engine.counters.pipe(Effect.tap((c) => Effect.sync(() => void (counters = c))));
    yield* Effect.forkScoped(Effect.forever(readCounters.pipe(Effect.andThen(Effect.sleep(heartbeatMs)))));
    const host = hostname();
    yield* registerMember(subjects.membersBucket, heartbeatMs, () => {
      const health = driverHealth?.();
      const capacity = health?.capacity ?? engine.info.sequences;
      const busy = inFlight();
      return {
        id,
        role,
        model: engine.info.model,
        pid: process.pid,
        vendor: engine.info.vendor,
        device: engine.info.device,
        emulated: engine.info.emulated,
        kvFormat: engine.info.kvFormat,
        inFlight: busy,
        capacity,
        contextSize: engine.info.contextSize,
        host,
        ...(role === "decode"
          ? { kvCapacityTokens: capacity * engine.info.contextSize, kvFreeTokens: Math.max(0, capacity - busy) * engine.info.contextSize }
          : {}),
        ...counters,
        ...extra,
        ...(health === undefined ? {} : { health: health.state, faults: health.faults, driverRestarts: health.driverRestarts }),
      };
    });
  });

/** How a worker describes itself in `$SRV.INFO` (discovery metadata is strings only). */
export const workerMetadata = (id: string, cluster: string, engine: Engine): Record<string, string> => ({
  id,
  cluster,
  model: engine.info.model,
  kvFormat: engine.info.kvFormat,
  device: engine.info.device,
  emulated: String(engine.info.emulated),
});
