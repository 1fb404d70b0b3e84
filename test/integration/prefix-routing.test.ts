// Prefix affinity across the cluster: with two prefill workers, requests sharing a 200-token prefix with one
// served before go to the worker that served it (the gateway's prefix index, fed by the workers' prefix events),
// which evaluates only the remainder (its engine counters, reported in membership), and the answers are exactly
// the monolithic run's with prefix reuse off.
import { Effect } from "effect";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { decodeMessage, MemberRecord } from "../../src/protocol/index.ts";
import { referenceTokens, startTestCluster, type TestCluster } from "../support/cluster.ts";

const PREFIX = "Once upon a time there was a little girl named Lily. She loved to play outside in the park. ".repeat(8);
const FIRST = `${PREFIX}Lily saw a dog.`;
const FOLLOWERS = [`${PREFIX}One day, Tom found a big red ball and`, `${PREFIX}The sun was hot, so`, `${PREFIX}Her mom said`];
const MAX_TOKENS = 16;
let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ prefill: 2, decode: 1, env: { TANDEM_PREFIX_REUSE: "1" } });
});

afterAll(async () => {
  await t?.stop();
});

const member = async (id: string) => {
  const entry = await (await t.nc.jetstream().views.kv(t.subjects.membersBucket)).get(id);
  return Effect.runPromise(decodeMessage(MemberRecord)(entry!.value));
};

/** The worker's record once its reported prompt counters have reached `promptTokens` (they follow the heartbeat). */
const countersAt = async (id: string, promptTokens: number) => {
  for (;;) {
    const record = await member(id);
    if ((record.promptTokens ?? 0) >= promptTokens) return record;
    await new Promise((r) => setTimeout(r, 100));
  }
};

it("routes prompts sharing a cached 200-token prefix to the worker holding it, which prefills only the rest, answers unchanged", async () => {
  const reference = await referenceTokens(FOLLOWERS, MAX_TOKENS);
  const first = await generate(t.nc, t.subjects, { prompt: FIRST, maxTokens: MAX_TOKENS, timeoutMs: 30_000 });
  expect(first.final._tag).toBe("GenerateDone");
  if (first.final._tag !== "GenerateDone") return;
  const holder = first.final.route.prefillWorker;
  let before = await countersAt(holder, first.final.usage.promptTokens);

  for (const prompt of FOLLOWERS) {
    const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: MAX_TOKENS, timeoutMs: 30_000 });
    expect(outcome.final._tag).toBe("GenerateDone");
    if (outcome.final._tag !== "GenerateDone") return;
    expect(outcome.final.route.prefillWorker).toBe(holder);
    const promptTokens = outcome.final.usage.promptTokens;
    const after = await countersAt(holder, (before.promptTokens ?? 0) + promptTokens);
    const evaluated = (after.promptTokensEvaluated ?? 0) - (before.promptTokensEvaluated ?? 0);
    const reused = (after.promptTokensReused ?? 0) - (before.promptTokensReused ?? 0);
    expect(reused).toBeGreaterThanOrEqual(200);
    expect(evaluated).toBe(promptTokens - reused);
    expect(evaluated).toBeLessThan(20);
    expect(outcome.tokens).toEqual(reference.get(prompt));
    before = after;
  }
});
