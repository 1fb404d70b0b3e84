// Prefix reuse in the real llama.cpp engine: a second prompt sharing a 200-token prefix with one served
// before evaluates only its remainder, and answers exactly what it answers with reuse off.
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { modelPath } from "../support/cluster.ts";

const PREFIX = "Once upon a time there was a little girl named Lily. She loved to play outside in the park. ".repeat(8);

const answer = (prefixReuse: boolean, prompts: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const engine = yield* makeLlamaCppEngine({ modelPath: modelPath(), prefixReuse });
        const runs = [];
        for (const prompt of prompts) {
          const tokens = yield* engine.tokenize(prompt);
          const before = yield* engine.counters;
          const out = yield* engine.generate(tokens, 32);
          const after = yield* engine.counters;
          runs.push({
            promptTokens: tokens.length,
            evaluated: after.promptTokensEvaluated - before.promptTokensEvaluated,
            reused: after.promptTokensReused - before.promptTokensReused,
            out,
          });
        }
        return runs;
      }),
    ),
  );

describe("prefix reuse", () => {
  it("a request sharing a 200-token prefix prefills only the remainder and answers exactly as with reuse off", async () => {
    const prompts = [`${PREFIX}Lily saw a dog.`, `${PREFIX}One day, Tom found a big red ball and`];
    const [first, second] = await answer(true, prompts);
    const [, secondCold] = await answer(false, prompts);
    expect(first!.reused).toBe(0);
    expect(second!.reused).toBeGreaterThanOrEqual(200);
    expect(second!.evaluated).toBe(second!.promptTokens - second!.reused);
    expect(second!.evaluated).toBeLessThan(20);
    expect(secondCold!.reused).toBe(0);
    expect(secondCold!.evaluated).toBe(secondCold!.promptTokens);
    expect(second!.out.length).toBe(32);
    expect(second!.out).toEqual(secondCold!.out);
  });

  it("the same prompt twice re-evaluates only its last token and answers the same", async () => {
    const prompt = `${PREFIX}The end.`;
    const [a, b] = await answer(true, [prompt, prompt]);
    expect(b!.evaluated).toBe(1);
    expect(b!.out).toEqual(a!.out);
  });
});
