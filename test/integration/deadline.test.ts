// Every accepted request ends before its deadline: one that cannot finish in time gets DeadlineExceeded,
// nothing reaches its inbox afterwards (the decode is cancelled), and no lease is left behind.
import { Effect } from "effect";
import { createInbox } from "nats";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { decodeMessage, encodeMessage, GenerateReply, GenerateRequest } from "../../src/protocol/index.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ prefill: 1, decode: 1 });
  expect((await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 4 })).final._tag).toBe("GenerateDone");
});

afterAll(async () => {
  await t?.stop();
});

it("a request that cannot finish in time ends with DeadlineExceeded, its decode stops, and its lease is released", async () => {
  const decode = decodeMessage(GenerateReply);
  const inbox = t.nc.subscribe(createInbox());
  const arrivals: Array<{ tag: string; code?: string; at: number }> = [];
  const done = (async () => {
    for await (const msg of inbox) {
      const reply = await Effect.runPromise(decode(msg.data));
      arrivals.push({ tag: reply._tag, at: performance.now(), ...(reply._tag === "GenerateFailed" ? { code: reply.error.code } : {}) });
    }
  })();
  const timeoutMs = 15;
  const started = performance.now();
  // 250 tokens take far longer than 15 ms here (about 0.2 ms per token plus the hops).
  t.nc.publish(
    t.subjects.generate,
    encodeMessage(GenerateRequest, { _tag: "GenerateRequest", prompt: "Once upon a time", maxTokens: 250, timeoutMs }),
    { reply: inbox.getSubject() },
  );
  await new Promise((r) => setTimeout(r, 1_000));
  inbox.unsubscribe();
  await done;
  const final = arrivals.findIndex((a) => a.tag === "GenerateFailed");
  expect(final).toBeGreaterThanOrEqual(0);
  expect(arrivals[final]!.code).toBe("DeadlineExceeded");
  expect(arrivals[final]!.at - started).toBeLessThan(timeoutMs + 250);
  // After the final message at most the chunks already in flight arrive; then the stream is silent.
  const after = arrivals.slice(final + 1);
  expect(after.every((a) => a.tag === "TokenChunk")).toBe(true);
  expect(after.length).toBeLessThan(50);
  expect(arrivals.filter((a) => a.tag === "TokenChunk").length).toBeLessThan(250);
  const stats = await t.brokerStats();
  expect(stats.activeLeases).toEqual([]);
  const next = await generate(t.nc, t.subjects, { prompt: "The little dog", maxTokens: 8 });
  expect(next.final._tag).toBe("GenerateDone");
});
