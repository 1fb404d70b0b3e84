// Which decodes join the engine's running batch, and when. The decision is the pure admission function the
// simulator's decode groups use (src/policy/batch-admission.ts), over this worker's queue of decodes whose KV
// has arrived: strictly first come, first served, each decode reserving its final context (prompt plus every
// token it may generate) up front, so a running sequence is never preempted for memory.
import { Deferred, Effect, type Scope } from "effect";
import { admitFromQueue, type BatchLimits, type BatchUsage } from "../../src/policy/batch-admission.ts";
import { invalidRequest, type TandemError } from "../../src/protocol/index.ts";

export interface DecodeAdmission {
  /**
   * Waits until a decode reserving `tokens` KV tokens may join the batch; the reservation lasts until the scope
   * closes. Fails at once when `tokens` exceed what the whole batch may hold (it would never be admitted).
   */
  readonly admit: (tokens: number) => Effect.Effect<void, TandemError, Scope.Scope>;
  /** What the running batch holds, and how many decodes wait behind it. */
  readonly usage: () => BatchUsage & { readonly waiting: number };
}

interface Waiter {
  readonly tokens: number;
  readonly admitted: Deferred.Deferred<void>;
  joined: boolean;
}

export const makeDecodeAdmission = (limits: BatchLimits): DecodeAdmission => {
  const waiting: Waiter[] = [];
  const usage = { sequences: 0, tokens: 0 };
  /** Admits as many waiters from the head as the policy lets in. */
  const admitWaiting = () => {
    const n = admitFromQueue(usage, limits, waiting.length, (i) => waiting[i]!.tokens);
    for (const waiter of waiting.splice(0, n)) {
      usage.sequences++;
      usage.tokens += waiter.tokens;
      waiter.joined = true;
      Deferred.doneUnsafe(waiter.admitted, Effect.void);
    }
  };
  const leave = (waiter: Waiter) =>
    Effect.sync(() => {
      if (waiter.joined) {
        usage.sequences--;
        usage.tokens -= waiter.tokens;
      } else {
        const at = waiting.indexOf(waiter);
        if (at >= 0) waiting.splice(at, 1);
      }
      admitWaiting();
    });
  return {
    admit: (tokens) =>
      Effect.gen(function* () {
        if (tokens > limits.maxTokens) {
          return yield* Effect.fail(
            invalidRequest("context_too_long", `a decode of ${tokens} tokens exceeds the ${limits.maxTokens} KV tokens this worker's batch holds`),
          );
        }
        const waiter: Waiter = { tokens, admitted: Deferred.makeUnsafe<void>(), joined: false };
        // Registered before waiting, so a decode interrupted in the queue leaves it, and an admitted one frees
        // its reservation.
        yield* Effect.addFinalizer(() => leave(waiter));
        waiting.push(waiter);
        admitWaiting();
        yield* Deferred.await(waiter.admitted);
      }),
    usage: () => ({ ...usage, waiting: waiting.length }),
  };
};
