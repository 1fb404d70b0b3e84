// Typed errors that cross actor and process boundaries. One class with a code keeps the wire form flat
// (a client in any language matches on `code`, then `reason`); constructors name every reason we emit.
import { Schema } from "effect";

export const ErrorCode = Schema.Literals(["InvalidRequest", "Unavailable", "DeadlineExceeded", "Overloaded", "Internal"]);
export type ErrorCode = typeof ErrorCode.Type;

export const ErrorBody = Schema.Struct({
  code: ErrorCode,
  reason: Schema.String,
  message: Schema.String,
});
export type ErrorBody = typeof ErrorBody.Type;

export class TandemError extends Schema.TaggedError<TandemError>()("TandemError", {
  code: ErrorCode,
  reason: Schema.String,
  message: Schema.String,
}) {
  get body(): ErrorBody {
    return { code: this.code, reason: this.reason, message: this.message };
  }
  static fromBody(body: ErrorBody): TandemError {
    return new TandemError(body);
  }
}

export const invalidRequest = (reason: string, message: string) =>
  new TandemError({ code: "InvalidRequest", reason, message });
export const unavailable = (reason: string, message: string) => new TandemError({ code: "Unavailable", reason, message });
export const deadlineExceeded = (message: string) =>
  new TandemError({ code: "DeadlineExceeded", reason: "deadline", message });
export const overloaded = (reason: string, message: string) => new TandemError({ code: "Overloaded", reason, message });
export const internal = (reason: string, message: string) => new TandemError({ code: "Internal", reason, message });
