// Supervision trees for Tandem (node → pools → workers → engine driver), built from Scope, FiberMap and
// Schedule because Effect 4 has no Supervisor module.
export { child, isAbnormal, shouldRestart, type ChildSpec, type RestartType } from "./child-spec.ts";
export { affectedChildren, type Strategy } from "./strategy.ts";
export { recordRestart, periodMillis, type Intensity } from "./intensity.ts";
export { defaultBackoff, makeBackoff, type Backoff, type BackoffSchedule } from "./backoff.ts";
export { SupervisorEscalated, escalated, type EscalationFields } from "./errors.ts";
export { restartCounts, type ChildStatus, type SupervisorStatus } from "./status.ts";
export { makeSupervisor, type Supervisor, type SupervisorOptions } from "./supervisor.ts";
export { runTopSupervisor, type TopOptions } from "./top.ts";
