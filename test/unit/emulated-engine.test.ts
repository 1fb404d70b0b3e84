// The emulated engine's timing and identity, on Effect's TestClock over an instant fake engine (so every
// delay observed is the emulation's own): the first token waits for the performance model's prefill time of
// the emulated model on the emulated chip, each decoded token one predicted step after the previous, prompts
// take turns on the emulated chip, concurrent sequences share (batched) steps, the time scale scales it all.
// Profiles with an unknown chip or model, or a model that does not fit, are refused with the valid choices.
import { Clock, Duration, Effect, Fiber } from "effect";
import { TestClock } from "effect/testing";
import { describe, expect, it } from "vitest";
import type { Engine, LiveSequence } from "../../src/engine/engine.ts";
import { makeEmulatedEngine } from "../../src/engine/emulated/emulated-engine.ts";
import { type EmulationSpec, resolveProfile } from "../../src/engine/emulated/profile.ts";
import { stepTiming } from "../../src/engine/emulated/step-timing.ts";
import { vendorKvDtype } from "../../src/engine/emulated/vendor-kv-format.ts";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { decodeStepSeconds, prefillSeconds } from "../../src/hardware/performance-model.ts";
import { formatName } from "../../src/kv/llama-format.ts";

const catalog = loadAcceleratorCatalog();
const spec = (overrides: Partial<EmulationSpec> = {}): EmulationSpec => ({
  chip: "nvidia-b200",
  model: "llama-3-8b",
  tp: 1,
  dtype: "bf16",
  timeScale: 1,
  kvDtype: "auto",
  ...overrides,
});

/** An engine that computes nothing and takes no time: prefill holds the prompt, decode emits 100, 101, … */
const instantEngine = (): Engine => {
  const sequence = (length: number): LiveSequence => {
    let held = length;
    return {
      get length() {
        return held;
      },
      exportKv: Effect.succeed(new Uint8Array()),
      decode: (_token, maxNewTokens, onToken) =>
        Effect.gen(function* () {
          held++; // the fed token
          for (let i = 0; i < maxNewTokens; i++) {
            yield* onToken(100 + i, "x");
            held++;
          }
          return { tokens: maxNewTokens, finishReason: "length" as const };
        }),
    };
  };
  return {
    info: { vendor: "cpu", device: "fake", model: "fake", emulated: false, kvFormat: formatName({ model: "fake", sequences: 4, flashAttention: true }), contextSize: 4096, sequences: 4, eosToken: 2 },
    counters: Effect.succeed({ promptTokens: 0, promptTokensEvaluated: 0, promptTokensReused: 0 }),
    tokenize: () => Effect.succeed([]),
    detokenize: () => "",
    prefill: (tokens) => Effect.succeed({ sequence: sequence(tokens.length), firstToken: 7 }),
    importKv: () => Effect.succeed(sequence(0)),
    generate: () => Effect.succeed([]),
  };
};

const emulated = (overrides: Partial<EmulationSpec> = {}) =>
  makeEmulatedEngine(instantEngine(), { profile: resolveProfile(catalog, spec(overrides), 4096), kvHeads: 2 });

const runTest = <A, E>(program: Effect.Effect<A, E>) => Effect.runPromise(program.pipe(Effect.provide(TestClock.layer())));

/** Advances the TestClock in 50 µs steps until the fiber is done; returns its value. */
const drive = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 100_000 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust(Duration.micros(50n));
    return yield* Fiber.join(fiber);
  });

const nowMs = Effect.map(Clock.currentTimeNanos, (n) => Number(n) / 1e6);
const b200 = findAccelerator(catalog, "nvidia-b200");
const llama8b = findModel("llama-3-8b");

describe("emulated engine timing", () => {
  it("releases the first token at the predicted prefill time of the emulated model, not before", async () => {
    const expectedMs = prefillSeconds(b200, llama8b, 2000) * 1000;
    expect(expectedMs).toBeGreaterThan(20); // 2000 tokens of Llama-3-8B on a B200: tens of ms
    const { early, done } = await runTest(Effect.gen(function* () {
      const engine = yield* emulated();
      const fiber = yield* Effect.forkChild(Effect.scoped(engine.prefill(new Array(2000).fill(1))));
      yield* TestClock.adjust(Duration.nanos(BigInt(Math.floor(expectedMs * 1e6)) - 1000n));
      const early = fiber.pollUnsafe() !== undefined;
      yield* TestClock.adjust(Duration.micros(2n));
      yield* Effect.yieldNow;
      return { early, done: fiber.pollUnsafe() !== undefined };
    }));
    expect(early).toBe(false);
    expect(done).toBe(true);
  });

  it("releases each decoded token one predicted step (batch 1, the sequence's context) after the previous", async () => {
    const prompt = 3000;
    const times = await runTest(Effect.gen(function* () {
      const engine = yield* emulated();
      const times: number[] = [];
      const fiber = yield* Effect.forkChild(Effect.scoped(Effect.gen(function* () {
        const { sequence } = yield* engine.prefill(new Array(prompt).fill(1));
        times.push(yield* nowMs);
        yield* sequence.decode(7, 5, () => Effect.map(nowMs, (t) => void times.push(t)));
      })));
      yield* drive(fiber);
      return times;
    }));
    let due = times[0]!;
    const expected = [due];
    for (let i = 0; i < 5; i++) expected.push((due += decodeStepSeconds(b200, llama8b, 1, prompt + 1 + i) * 1000));
    expect(times.length).toBe(6);
    times.forEach((t, i) => expect(t, `token ${i}`).toBeCloseTo(expected[i]!, 5)); // sleeps round up to whole nanoseconds
  });

  it("runs prompts one at a time on the emulated chip", async () => {
    const one = prefillSeconds(b200, llama8b, 500) * 1000;
    const finished = await runTest(Effect.gen(function* () {
      const engine = yield* emulated();
      const finished: number[] = [];
      const prefillOnce = Effect.scoped(engine.prefill(new Array(500).fill(1))).pipe(Effect.andThen(nowMs), Effect.map((t) => void finished.push(t)));
      yield* drive(yield* Effect.forkChild(Effect.all([prefillOnce, prefillOnce], { concurrency: 2 })));
      return finished;
    }));
    expect(finished[0]).toBeCloseTo(one, 4);
    expect(finished[1]).toBeCloseTo(2 * one, 4);
  });

  it("batches concurrent sequences: two decode together in less than twice one's time, more than once", async () => {
    const decodeAll = (sequences: number) =>
      runTest(Effect.gen(function* () {
        const engine = yield* emulated();
        const one = Effect.scoped(Effect.gen(function* () {
          const { sequence } = yield* engine.prefill([1]);
          return sequence;
        }));
        const decodeTogether = Effect.gen(function* () {
          const seqs = yield* Effect.all(Array.from({ length: sequences }, () => one));
          const start = yield* nowMs;
          yield* Effect.all(seqs.map((s) => s.decode(7, 40, () => Effect.void)), { concurrency: "unbounded" });
          return (yield* nowMs) - start;
        });
        return yield* drive(yield* Effect.forkChild(decodeTogether));
      }));
    const alone = await decodeAll(1);
    const pair = await decodeAll(2);
    expect(alone).toBeCloseTo(stepTiming(resolveProfile(catalog, spec(), 4096)).decodeStepMs(1, 2) * 40, -1);
    expect(pair).toBeGreaterThan(alone);
    expect(pair).toBeLessThan(1.5 * alone);
  });

  it("scales every delay by the time scale; 0 releases at once", async () => {
    const at = (timeScale: number) =>
      runTest(Effect.gen(function* () {
        const engine = yield* emulated({ timeScale });
        const fiber = yield* Effect.forkChild(engine.generate(new Array(1000).fill(1), 20));
        yield* drive(fiber);
        return yield* nowMs;
      }));
    const full = await at(1);
    expect(full).toBeGreaterThan(50);
    expect(await at(0.01)).toBeCloseTo(full / 100, 1);
    // No delay at all: done without the clock moving.
    expect(await runTest(Effect.gen(function* () {
      const engine = yield* emulated({ timeScale: 0 });
      yield* engine.generate(new Array(1000).fill(1), 20);
      return yield* nowMs;
    }))).toBe(0);
  });

  it("uses the step time of the batch and the KV it holds", () => {
    const timing = stepTiming(resolveProfile(catalog, spec({ timeScale: 0.5 }), 4096));
    expect(timing.decodeStepMs(8, 8 * 1024)).toBeCloseTo(decodeStepSeconds(b200, llama8b, 8, 1024) * 500, 9);
    expect(timing.prefillMs(128)).toBeCloseTo(prefillSeconds(b200, llama8b, 128) * 500, 9);
    expect(timing.decodeStepMs(64, 64 * 4096)).toBeGreaterThan(timing.decodeStepMs(1, 4096));
  });
});

describe("emulated engine identity and profiles", () => {
  it("reports the chip's vendor, the chip as device, emulated: true and the native KV format", async () => {
    const info = (chip: string) => Effect.runPromise(emulated({ chip })).then((e) => e.info);
    expect(await info("nvidia-b200")).toMatchObject({ vendor: "NVIDIA", device: "nvidia-b200", emulated: true, model: "fake", kvFormat: "vllm-flash-attention/f16/fake/kv_heads=2" });
    expect(await info("amd-mi300x")).toMatchObject({ vendor: "AMD", kvFormat: "rocm-flash-attention/f16/fake/kv_heads=2" });
    expect(await info("intel-gaudi3-hl325l")).toMatchObject({ vendor: "Intel", kvFormat: "vllm-gaudi/f16/fake/kv_heads=2" });
    expect(await info("aws-trainium2")).toMatchObject({ vendor: "AWS", kvFormat: "canonical/f16/fake/kv_heads=2" });
  });

  it("takes the chip's own fp8 flavour and refuses dtypes that do not exist", () => {
    const chip = (id: string) => findAccelerator(catalog, id);
    expect(vendorKvDtype(chip("amd-mi300x"), "fp8", "f16")).toBe("fp8_e4m3fnuz");
    expect(vendorKvDtype(chip("amd-mi355x"), "fp8", "f16")).toBe("fp8_e4m3fn");
    expect(vendorKvDtype(chip("nvidia-b200"), "fp8", "f16")).toBe("fp8_e4m3fn");
    expect(vendorKvDtype(chip("nvidia-b200"), "auto", "f16")).toBe("f16");
    expect(() => vendorKvDtype(chip("google-tpu-v5e"), "fp8", "f16")).toThrow(/no fp8 KV format/);
    expect(() => vendorKvDtype(chip("nvidia-b200"), "int4", "f16")).toThrow(/unknown KV dtype "int4"/);
  });

  it("refuses an unknown chip or model listing the valid ids, and a model that does not fit", () => {
    expect(() => resolveProfile(catalog, spec({ chip: "nvidia-b300" }), 512)).toThrow(/unknown chip "nvidia-b300"; known: nvidia-h100-sxm, .*intel-gaudi3-hl325l/);
    expect(() => resolveProfile(catalog, spec({ model: "llama-4" }), 512)).toThrow(/unknown model "llama-4"; known: llama-3-8b, llama-3-70b/);
    expect(() => resolveProfile(catalog, spec({ chip: "nvidia-h100-sxm", model: "llama-3-405b" }), 512)).toThrow(/does not fit on 1 × nvidia-h100-sxm.*TANDEM_EMULATE_TP/);
    expect(resolveProfile(catalog, spec({ chip: "nvidia-h100-sxm", model: "llama-3-405b", tp: 16 }), 512).tp).toBe(16);
  });
});
