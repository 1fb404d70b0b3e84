// KV handed between engines with different KV layouts: a prompt prefilled with flash attention on (V stored
// cell-major) is decoded by an engine with flash attention off (V stored transposed), and the other way round.
// llama.cpp refuses the untranslated state; translated with setVTransposed it loads and the greedy tokens are
// exactly those of an uninterrupted run. A control that only relabels the layout (data left as it was) loads
// too but decodes something else, so the equality proves the V data was moved correctly, not just accepted.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Effect, Exit, Scope } from "effect";
import type { Engine } from "../../src/engine/engine.ts";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { resolveModelPath } from "../../src/engine/model-resolution.ts";
import { type LlamaSeqState, llamaSeqState, parseLlamaSeqState, setVTransposed, writeLlamaSeqState } from "../../src/kv/llama-state.ts";

const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily wanted to play with her friend Tom in the park, but",
  "One day, a big bear",
];
const MAX_TOKENS = 48;
const SEQUENCES = 8; // the same on both sides: llama.cpp only loads a state into the same stream count

let scope: Scope.Closeable;
let engines: { on: Engine; off: Engine };

beforeAll(async () => {
  scope = Scope.makeUnsafe();
  const modelPath = resolveModelPath(undefined);
  engines = await Effect.runPromise(
    Scope.provide(scope)(
      Effect.all({
        on: makeLlamaCppEngine({ modelPath, flashAttention: true, sequences: SEQUENCES }),
        off: makeLlamaCppEngine({ modelPath, flashAttention: false, sequences: SEQUENCES }),
      }),
    ),
  );
});

afterAll(async () => {
  if (scope) await Effect.runPromise(Scope.close(scope, Exit.void));
});

const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Effect.scoped(effect));

/** Decodes greedily from an imported state: the first token (from prefill) and then up to MAX_TOKENS - 1 more. */
const decodeFrom = (engine: Engine, bytes: Uint8Array, firstToken: number) =>
  Effect.gen(function* () {
    const sequence = yield* engine.importKv(bytes);
    const out = [firstToken];
    yield* sequence.decode(firstToken, MAX_TOKENS - 1, (t) => Effect.sync(() => void out.push(t)));
    return out;
  });

/** Claims the other layout without moving any V data: loads, but holds the wrong numbers. */
const relabelOnly = (state: LlamaSeqState, transposed: boolean): LlamaSeqState =>
  llamaSeqState({
    ...state,
    caches: state.caches.map((cache) => ({
      streams: cache.streams.map((s) =>
        s.cells.length === 0 ? s : {
          ...s,
          vTransposed: transposed,
          layers: s.layers.map(({ k, v }) => ({
            k,
            v: { ...v, transposed, elementBytes: 2, embd: v.rowBytes / 2, rowBytes: v.rowBytes },
          })),
        }
      ),
    })),
  });

describe("cross-layout KV handoff (flash attention on ↔ off)", () => {
  for (const [from, to] of [["on", "off"], ["off", "on"]] as const) {
    it(`prefill with flash attention ${from}, decode with it ${to}: refused untranslated, exact once translated`, async () => {
      const source = engines[from];
      const target = engines[to];
      const targetTransposed = to === "off";
      for (const prompt of PROMPTS) {
        const tokens = await run(source.tokenize(prompt));
        // Uninterrupted references on both layouts (one sequence at a time, so batch shape cannot differ).
        const referenceSource = await run(source.generate(tokens, MAX_TOKENS));
        const referenceTarget = await run(target.generate(tokens, MAX_TOKENS));
        expect(referenceSource.length, prompt).toBeGreaterThanOrEqual(32);

        const { bytes, firstToken } = await run(
          Effect.gen(function* () {
            const { sequence, firstToken } = yield* source.prefill(tokens);
            return { bytes: yield* sequence.exportKv, firstToken };
          }),
        );
        expect(firstToken).toBe(referenceSource[0]);
        const state = parseLlamaSeqState(bytes);
        expect(state.vTransposed).toBe(!targetTransposed);
        expect(state.tokens).toEqual(tokens);
        expect(state.nStream).toBe(SEQUENCES);

        // 1. llama.cpp refuses the state in the other layout.
        const refused = await run(
          target.importKv(bytes).pipe(Effect.match({ onSuccess: () => "accepted", onFailure: (fault) => fault.code })),
        );
        expect(refused, `${prompt}: untranslated state`).toBe("state_load_rejected");
        // ...while the same bytes load and decode exactly in their own layout (so the refusal is the layout).
        expect(await run(decodeFrom(source, bytes, firstToken)), prompt).toEqual(referenceSource);

        // 2. Translated, it loads and decodes exactly the uninterrupted tokens.
        const translated = writeLlamaSeqState(setVTransposed(state, targetTransposed));
        expect(translated.length).toBe(bytes.length);
        expect(parseLlamaSeqState(translated).vTransposed).toBe(targetTransposed);
        const handedOff = await run(decodeFrom(target, translated, firstToken));
        expect(handedOff, prompt).toEqual(referenceSource);
        expect(handedOff, prompt).toEqual(referenceTarget);

        // 3. Control: relabelling the layout without transposing loads, but the tokens go wrong.
        const relabelled = writeLlamaSeqState(relabelOnly(state, targetTransposed));
        const garbled = await run(decodeFrom(target, relabelled, firstToken));
        expect(garbled, `${prompt}: decoding did not depend on the V layout`).not.toEqual(referenceSource);
      }
    });
  }
});
