// What the request actor does when one attempt at a request fails: try again elsewhere, or end the request
// with a typed error. Pure, so tests and the simulator can ask it the same questions the gateway does.
import { invalidRequest, type TandemError } from "../protocol/index.ts";

/** Attempts one request may take in all (the deadline bounds them too). */
export const MAX_ATTEMPTS = 4;
/** Workers one request may take down (process lost or device fault) before it is judged poison. */
export const POISON_CRASHES = 3;
const RETRY_BASE_MS = 20;
const RETRY_MAX_MS = 500;

/** Failures that say "nothing can serve this right now" rather than "this worker failed": retrying won't help. */
const HOPELESS = new Set(["no_workers", "no_compatible_pair"]);

export type RecoveryVerdict =
  | { readonly _tag: "Retry"; readonly delayMs: number; readonly crashed: boolean }
  | { readonly _tag: "GiveUp"; readonly error: TandemError };

/** Whether the failure means the worker itself went down (its process, or its device), not just the request. */
export const isCrash = (error: TandemError): boolean => error.reason === "worker_lost" || error.reason.startsWith("device_");

/**
 * `attempt` is the attempt that failed (0-based); `crashesSoFar` counts earlier attempts that crashed a worker.
 * Unavailable and Overloaded are retried with growing delay; anything else (invalid input, the deadline, a
 * replay that diverged) ends the request with that error.
 */
export const recoveryVerdict = (error: TandemError, attempt: number, crashesSoFar: number): RecoveryVerdict => {
  const retryable = (error.code === "Unavailable" || error.code === "Overloaded") && !HOPELESS.has(error.reason);
  if (!retryable) return { _tag: "GiveUp", error };
  const crashed = isCrash(error);
  if (crashed && crashesSoFar + 1 >= POISON_CRASHES) {
    return {
      _tag: "GiveUp",
      error: invalidRequest(
        "poison_request",
        `the request took down ${crashesSoFar + 1} workers (last: ${error.reason}: ${error.message}); it is not tried again`,
      ),
    };
  }
  if (attempt + 1 >= MAX_ATTEMPTS) return { _tag: "GiveUp", error };
  return { _tag: "Retry", delayMs: Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt), crashed };
};
