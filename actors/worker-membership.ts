// Prefill and decode workers register the same way: their engine's description plus a live load figure.
import type { Engine } from "../src/engine/engine.ts";
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
) =>
  registerMember(subjects.membersBucket, heartbeatMs, () => ({
    id,
    role,
    model: engine.info.model,
    pid: process.pid,
    vendor: engine.info.vendor,
    device: engine.info.device,
    emulated: engine.info.emulated,
    kvFormat: engine.info.kvFormat,
    inFlight: inFlight(),
    capacity: engine.info.sequences,
    contextSize: engine.info.contextSize,
    ...extra,
  }));
