// The spill tier for real: a prefill engine (prefix reuse on, 2 sequences) evicts a 200-token prefix, which goes
// to a JetStream Object Store bucket on a private nats-server; another engine of the same format, which never saw
// the prefix, restores it for a prompt sharing it, evaluates only the remainder (engine counters) and answers
// exactly as an engine with reuse off.
import { Effect, Layer } from "effect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type NatsServerHandle, startNatsServer } from "../../src/cluster/nats-server.ts";
import { type Engine, type EngineCounters } from "../../src/engine/engine.ts";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { subjectsFor } from "../../src/protocol/index.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";
import { openPrefixSpill, type PrefixSpillStore } from "../../src/transport/prefix-spill-store.ts";
import { modelPath } from "../support/cluster.ts";

const PREFIX = "Once upon a time there was a little girl named Lily. She loved to play outside in the park. ".repeat(8);
const EVICTED = `${PREFIX}Lily saw a dog.`;
const OTHERS = ["The cat sat on the mat and looked at the bird.", "Tom had a red car. He liked to drive it fast."];
const SHARING = `${PREFIX}One day, Tom found a big red ball and`;
const MAX_TOKENS = 24;
const BUCKET = subjectsFor("spilltest").prefixSpillBucket;
let nats: NatsServerHandle;

beforeAll(async () => {
  nats = await startNatsServer();
});

afterAll(async () => {
  await nats?.stop();
});

const waitFor = (condition: () => boolean) =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.sleep(20);
  });

/** Generates `prompt` on `engine`; returns the tokens and what the engine's counters moved by. */
const run = (engine: Engine, prompt: string) =>
  Effect.gen(function* () {
    const tokens = yield* engine.tokenize(prompt);
    const before: EngineCounters = yield* engine.counters;
    const out = yield* engine.generate(tokens, MAX_TOKENS);
    const after = yield* engine.counters;
    return {
      promptTokens: tokens.length,
      evaluated: after.promptTokensEvaluated - before.promptTokensEvaluated,
      reused: after.promptTokensReused - before.promptTokensReused,
      out,
    };
  });

it("an evicted prefix goes to the Object Store and another engine restores it instead of evaluating it", async () => {
  const result = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        // Two spill views, as two prefill worker processes would have; the store is shared through NATS.
        const spillA: PrefixSpillStore = yield* openPrefixSpill(BUCKET);
        const spillB: PrefixSpillStore = yield* openPrefixSpill(BUCKET);
        const options = { modelPath: modelPath(), prefixReuse: true, sequences: 2 } as const;
        const engineA = yield* makeLlamaCppEngine({ ...options, prefixSpill: spillA });
        yield* run(engineA, EVICTED);
        // Two other prompts take both sequences; the second overwrites the one holding the prefix: evicted, spilled.
        for (const prompt of OTHERS) yield* run(engineA, prompt);
        yield* waitFor(() => spillA.counters().stored >= 1);
        yield* waitFor(() => spillB.counters().known >= 1);

        const engineB = yield* makeLlamaCppEngine({ ...options, prefixSpill: spillB });
        const restored = yield* run(engineB, SHARING);
        const cold = yield* makeLlamaCppEngine({ ...options, prefixReuse: false });
        const reference = yield* run(cold, SHARING);
        return { restored, reference, a: spillA.counters(), b: spillB.counters() };
      }),
    ).pipe(Effect.provide(Layer.fresh(NatsClient.layer({ servers: nats.url, name: "spill-test" })))),
  );
  expect(result.a.stored).toBeGreaterThanOrEqual(1);
  expect(result.a.storeFailures).toBe(0);
  expect(result.b.restored).toBe(1);
  expect(result.b.restoredBlocks * 16).toBeGreaterThanOrEqual(200);
  expect(result.restored.reused).toBeGreaterThanOrEqual(200);
  expect(result.restored.evaluated).toBe(result.restored.promptTokens - result.restored.reused);
  expect(result.restored.evaluated).toBeLessThan(20);
  expect(result.reference.evaluated).toBe(result.reference.promptTokens);
  expect(result.restored.out.length).toBe(MAX_TOKENS);
  expect(result.restored.out).toEqual(result.reference.out);
});

it("keeps the bucket under its size cap by evicting the oldest stored prefixes", async () => {
  const STATE_BYTES = 100_000;
  const CAP = 250_000;
  const state = (i: number) => Uint8Array.from({ length: STATE_BYTES }, (_, j) => (i * 31 + j) & 255);
  const chain = (i: number) => [1000 + i, 2000 + i];
  const result = await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const bucket = subjectsFor("spillcap").prefixSpillBucket;
        const spill = yield* openPrefixSpill(bucket, { maxBytes: CAP });
        // Another process's view, with the default cap: it sees only what the listing says.
        const observer = yield* openPrefixSpill(bucket);
        for (let i = 0; i < 4; i++) {
          yield* spill.store("fmt", chain(i), state(i));
          yield* waitFor(() => spill.counters().stored === i + 1);
        }
        yield* waitFor(() => observer.counters().known === 2 && observer.counters().knownBytes <= CAP);
        const oldest = yield* observer.fetch("fmt", chain(0), 0);
        const newest = yield* observer.fetch("fmt", chain(3), 0);
        return { spill: spill.counters(), observer: observer.counters(), oldest, newest };
      }),
    ).pipe(Effect.provide(Layer.fresh(NatsClient.layer({ servers: nats.url, name: "spill-cap-test" })))),
  );
  expect(result.spill.evicted).toBe(2);
  expect(result.spill.knownBytes).toBe(2 * STATE_BYTES);
  expect(result.observer.knownBytes).toBe(2 * STATE_BYTES);
  expect(result.oldest).toBeUndefined();
  expect(result.newest?.blocks).toBe(2);
  expect(result.newest?.state).toEqual(state(3));
});
