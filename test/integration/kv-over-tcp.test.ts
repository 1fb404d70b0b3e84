// Large KV caches take the direct TCP channel negotiated over NATS: the decode worker advertises its
// listener in membership, the gateway hands it to the prefill worker, and no KV byte crosses NATS.
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { referenceTokens, startTestCluster, type TestCluster } from "../support/cluster.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to play with her friend Tom in the park, but"];
let t: TestCluster;

beforeAll(async () => {
  // Every cache counts as "large" here, so every transfer goes over TCP.
  t = await startTestCluster({ prefill: 1, decode: 1, env: { TANDEM_KV_TCP_MIN_BYTES: "0" } });
});

afterAll(async () => {
  await t?.stop();
});

it("moves the KV over the direct TCP stream, tokens equal to the monolithic run, no KV bytes on NATS", async () => {
  const reference = await referenceTokens(PROMPTS, 32);
  let kvOnNats = 0;
  const sniffer = t.nc.subscribe(`tandem.v1.${t.subjects.cluster}.kv.*.data`, { callback: () => void kvOnNats++ });
  const before = await t.brokerStats();
  for (const prompt of PROMPTS) {
    const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: 32 });
    expect(outcome.final._tag, JSON.stringify(outcome.final)).toBe("GenerateDone");
    if (outcome.final._tag !== "GenerateDone") return;
    expect(outcome.tokens).toEqual(reference.get(prompt));
    expect(outcome.final.route.kvBytes).toBeGreaterThan(0);
  }
  await t.nc.flush();
  sniffer.unsubscribe();
  const after = await t.brokerStats();
  expect(kvOnNats).toBe(0);
  expect(after.completed - before.completed).toBe(PROMPTS.length);
  expect(after.activeLeases).toEqual([]);
});
