// The one way a supervisor fails: it exceeded its restart intensity and hands the problem to its parent,
// which sees it as its own child failing (OTP escalation).
import { Data } from "effect";

export interface EscalationFields {
  readonly supervisor: string;
  /** The child whose exit pushed the supervisor over its intensity. */
  readonly childId: string;
  /** Restarts counted inside the period when it gave up (maxRestarts + 1). */
  readonly restarts: number;
  readonly periodMillis: number;
  /** First line of the child's failure. */
  readonly reason: string;
}

export class SupervisorEscalated extends Data.TaggedError("SupervisorEscalated")<EscalationFields & { readonly message: string }> {}

export const escalated = (fields: EscalationFields): SupervisorEscalated =>
  new SupervisorEscalated({
    ...fields,
    message: `supervisor ${fields.supervisor} escalated: child ${fields.childId} needed ${fields.restarts} restarts within ${fields.periodMillis} ms (${fields.reason})`,
  });
