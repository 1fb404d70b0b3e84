// The monolithic baseline server answers the same generate call with the same tokens from one process, and
// shares the gateway's validation (it is the same endpoint code).
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { referenceTokens, startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ prefill: 0, decode: 0, monolithic: true });
});

afterAll(async () => {
  await t?.stop();
});

it("serves the monolithic tokens from a single process over the generate protocol", async () => {
  const prompts = ["Once upon a time", "The little dog"];
  const reference = await referenceTokens(prompts, 24);
  const [process] = t.cluster.processes;
  for (const prompt of prompts) {
    const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: 24 });
    expect(outcome.final._tag).toBe("GenerateDone");
    if (outcome.final._tag !== "GenerateDone") return;
    expect(outcome.tokens).toEqual(reference.get(prompt));
    expect(outcome.final.route.prefillPid).toBe(process!.child.pid);
    expect(outcome.final.route.decodePid).toBe(process!.child.pid);
    expect(outcome.final.usage.completionTokens).toBe(24);
  }
  const bad = await generate(t.nc, t.subjects, { prompt: "", maxTokens: 4 });
  expect(bad.final._tag === "GenerateFailed" && bad.final.error.reason).toBe("empty_prompt");
});
