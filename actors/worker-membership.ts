// Prefill and decode workers register the same way: their engine's description, a live load figure and, when the
// engine runs under its driver supervisor, the driver's health (serving, restarting, quarantined) and fault counts.
import type { Engine } from "../src/engine/engine.ts";
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
  registerMember(subjects.membersBucket, heartbeatMs, () => {
    const health = driverHealth?.();
    return {
    id,
    role,
    model: engine.info.model,
    pid: process.pid,
    vendor: engine.info.vendor,
    device: engine.info.device,
    emulated: engine.info.emulated,
    kvFormat: engine.info.kvFormat,
    inFlight: inFlight(),
    capacity: health?.capacity ?? engine.info.sequences,
    contextSize: engine.info.contextSize,
    ...extra,
    ...(health === undefined ? {} : { health: health.state, faults: health.faults, driverRestarts: health.driverRestarts }),
  };
  });
