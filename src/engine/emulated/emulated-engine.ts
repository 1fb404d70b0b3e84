// An emulated vendor engine: a real engine computes the tokens; a hardware profile decides when they are
// released and what the KV looks like on the wire.
//
// Timing (./step-timing.ts, Effect's Clock): a prompt's first token is released when the performance model
// says the emulated chip would have finished prefilling it — the real prefill's own time counts towards
// that, the rest is slept. The emulated chip prefills one prompt at a time. Each decoded token is released
// one predicted step after the sequence's previous one, the step time taken for the sequences decoding in
// this engine at that moment and the KV they hold; a real engine slower than the emulated chip is never
// hidden (tokens go out as soon as they exist, and the next step counts from then).
//
// KV: exports are the real engine's llama.cpp state turned into the vendor's native layout
// (./vendor-kv-format.ts, ./llama-native.ts) in a self-describing envelope (./kv-envelope.ts); imports take
// such an envelope and rebuild the state for the real engine's context.
//
// info: the chip's vendor, `device` = the chip id, `emulated: true`, `kvFormat` = the native format name.
import { Clock, Duration, Effect, Semaphore } from "effect";
import { DriverFault, type Engine, generateInOneSequence, type LiveSequence } from "../engine.ts";
import type { KvDtype } from "../../kv/descriptor.ts";
import { parseFormatName } from "../../kv/llama-format.ts";
import { decodeEnvelopeAs } from "./kv-envelope.ts";
import { llamaToNative, nativeToLlama } from "./llama-native.ts";
import { nativeFormatName } from "./native-kv-format.ts";
import type { HardwareProfile } from "./profile.ts";
import { stepTiming } from "./step-timing.ts";
import { vendorKvDtype, vendorKvFamily } from "./vendor-kv-format.ts";

/** The KV dtype of the real engine's cache: node-llama-cpp contexts keep llama.cpp's default, f16. */
const REAL_KV_DTYPE: KvDtype = "f16";

export interface EmulatedEngineOptions {
  readonly profile: HardwareProfile;
  /** KV heads of the real engine's model (a llama.cpp state row does not say how its elements split). */
  readonly kvHeads: number;
}

const nowMs = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos) / 1e6);

/** Sleeps until `dueMs` on the Clock (not at all if it has passed); returns the later of `dueMs` and now. */
const releaseAt = (dueMs: number) =>
  Effect.gen(function* () {
    const now = yield* nowMs;
    if (dueMs <= now) return now;
    yield* Effect.sleep(Duration.nanos(BigInt(Math.ceil((dueMs - now) * 1e6))));
    return dueMs;
  });

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export const makeEmulatedEngine = (real: Engine, options: EmulatedEngineOptions): Effect.Effect<Engine, DriverFault> =>
  Effect.gen(function* () {
    const { profile } = options;
    const vendor = profile.chip.vendor;
    const fault = (code: string) => (error: unknown) => new DriverFault({ vendor, code, faultClass: "fatal", message: message(error) });
    const realFormat = parseFormatName(real.info.kvFormat);
    if (realFormat === undefined) {
      return yield* Effect.fail(fault("unsupported_engine")(`cannot emulate over an engine whose KV format is ${real.info.kvFormat}`));
    }
    const format = yield* Effect.try({
      try: () => ({
        family: vendorKvFamily(profile.chip),
        dtype: vendorKvDtype(profile.chip, profile.kvDtype, REAL_KV_DTYPE),
        model: real.info.model,
        kvHeads: options.kvHeads,
      }),
      catch: fault("unsupported_kv_dtype"),
    });
    const timing = stepTiming(profile);
    const device = yield* Semaphore.make(1);
    /** Sequences that have started releasing decoded tokens and not finished: the emulated decode batch. */
    const batch = new Set<LiveSequence>();

    const wrap = (inner: LiveSequence): LiveSequence => {
      const sequence: LiveSequence = {
        get length() {
          return inner.length;
        },
        exportKv: inner.exportKv.pipe(
          Effect.flatMap((state) => Effect.try({ try: () => llamaToNative(state, format), catch: fault("kv_export_failed") })),
        ),
        decode: (token, maxNewTokens, onToken) =>
          Effect.gen(function* () {
            let last = yield* nowMs;
            return yield* inner.decode(token, maxNewTokens, (t, text) =>
              Effect.gen(function* () {
                batch.add(sequence);
                let held = 0;
                for (const s of batch) held += s.length;
                last = yield* releaseAt(last + timing.decodeStepMs(batch.size, held));
                yield* onToken(t, text);
              }));
          }).pipe(Effect.ensuring(Effect.sync(() => void batch.delete(sequence)))),
      };
      return sequence;
    };

    const prefill = (tokens: ReadonlyArray<number>) =>
      device.withPermits(1)(
        Effect.gen(function* () {
          const started = yield* nowMs;
          const { sequence, firstToken } = yield* real.prefill(tokens);
          yield* releaseAt(started + timing.prefillMs(tokens.length));
          return { sequence: wrap(sequence), firstToken };
        }),
      );

    const engine: Engine = {
      info: { ...real.info, vendor, device: profile.chip.id, emulated: true, kvFormat: nativeFormatName(format) },
      counters: real.counters,
      tokenize: real.tokenize,
      detokenize: real.detokenize,
      prefill,
      importKv: (bytes) =>
        Effect.try({
          // Only KV in this engine's own layout: anything else must have been translated before it got here.
          try: () =>
            nativeToLlama(decodeEnvelopeAs(bytes, format), {
              model: real.info.model,
              sequences: real.info.sequences,
              flashAttention: realFormat.flashAttention,
            }),
          catch: fault("state_load_rejected"),
        }).pipe(Effect.flatMap(real.importKv), Effect.map(wrap)),
      generate: generateInOneSequence(prefill, real.info.eosToken),
    };
    return engine;
  });
