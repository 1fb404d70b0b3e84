// Fault injection at the driver seam: wraps a real engine and, before each driver call (prefill, KV export,
// KV import, decode), asks a seeded schedule whether this call fails and with which of the vendor's real codes.
// A decode that draws a fault fails mid-stream, after a few tokens, which is where migration is hardest.
import { Effect } from "effect";
import type { DriverFault, Engine, LiveSequence } from "../engine.ts";
import type { FaultSchedule } from "./fault-schedule.ts";

/** Tokens a faulted decode streams before its fault fires. */
export const DECODE_FAULT_AFTER_TOKENS = 3;

export const withInjectedFaults = (engine: Engine, schedule: FaultSchedule): Engine => {
  const drawn = (): Effect.Effect<void, DriverFault> =>
    Effect.suspend(() => {
      const fault = schedule.next();
      return fault === undefined ? Effect.void : Effect.fail(fault);
    });

  const wrapSequence = (sequence: LiveSequence): LiveSequence => ({
    get length() {
      return sequence.length;
    },
    exportKv: drawn().pipe(Effect.andThen(sequence.exportKv)),
    decode: (token, maxNewTokens, onToken) =>
      Effect.suspend(() => {
        const fault = schedule.next();
        if (fault === undefined) return sequence.decode(token, maxNewTokens, onToken);
        // The fault fires at step DECODE_FAULT_AFTER_TOKENS + 1, unless the answer ended (EOS) before that.
        return sequence.decode(token, Math.min(maxNewTokens, DECODE_FAULT_AFTER_TOKENS), onToken).pipe(
          Effect.flatMap((result) => (result.finishReason === "stop" ? Effect.succeed(result) : Effect.fail(fault))),
        );
      }),
  });

  return {
    ...engine,
    prefill: (tokens) =>
      drawn().pipe(Effect.andThen(engine.prefill(tokens)), Effect.map(({ sequence, firstToken }) => ({ sequence: wrapSequence(sequence), firstToken }))),
    importKv: (bytes) => drawn().pipe(Effect.andThen(engine.importKv(bytes)), Effect.map(wrapSequence)),
  };
};
