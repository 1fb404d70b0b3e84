// The reference the disaggregated path must equal: each prompt generated in one uninterrupted llama.cpp
// sequence in this process, with the same engine settings the workers use.
import { Effect } from "effect";
import { engineOptions, makeLlamaCppEngine } from "../engine/llama-cpp.ts";
import { readSettings } from "../runtime/settings.ts";

export const monolithicEngine = (modelPath: string) => makeLlamaCppEngine(engineOptions(modelPath, readSettings()));

/** Greedy tokens for every prompt, keyed by prompt. */
export const monolithicTokens = (modelPath: string, prompts: ReadonlyArray<string>, maxTokens: number) =>
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* monolithicEngine(modelPath);
      const out = new Map<string, ReadonlyArray<number>>();
      for (const prompt of new Set(prompts)) out.set(prompt, yield* engine.generate(yield* engine.tokenize(prompt), maxTokens));
      return out;
    }),
  );
