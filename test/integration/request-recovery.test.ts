// End-to-end recovery owned by the request actor: a worker dies at a chosen point and the caller still gets
// the whole answer — the same tokens as an uninterrupted run, every position once, in order — or, for a
// request that keeps killing workers, a typed error before its deadline.
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { generate, type GenerateOutcome } from "../../src/client/client.ts";
import { isAlive, referenceFor, startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const PROMPT = "Once upon a time";
const MAX_TOKENS = 24;
let reference: ReadonlyArray<number> = [];
beforeAll(async () => {
  reference = await referenceFor(PROMPT, MAX_TOKENS);
});

// Short heartbeats so a dead worker leaves routing in about half a second.
const FAST = { TANDEM_HEARTBEAT_MS: "250", TANDEM_LEASE_TTL_MS: "3000", TANDEM_KV_STALL_MS: "1000" };

const expectWhole = (outcome: GenerateOutcome) => {
  expect(outcome.final).toMatchObject({ _tag: "GenerateDone" });
  expect(outcome.tokens).toEqual(reference);
  expect(outcome.duplicateChunks).toBe(0);
  expect(outcome.missingChunks).toBe(0);
  expect(outcome.chunks.map((c) => c.seq)).toEqual(reference.map((_, i) => i));
};

const isDead = (pid: number) => !isAlive(pid);

/** Sends the prompt until the worker with `pid` has died, checking every answer on the way. */
const serveUntilDead = async (tc: TestCluster, pid: number, rounds = 6) => {
  const outcomes: GenerateOutcome[] = [];
  for (let i = 0; i < rounds && !isDead(pid); i++) {
    const outcome = await generate(tc.nc, tc.subjects, { prompt: PROMPT, maxTokens: MAX_TOKENS, timeoutMs: 15_000 });
    expectWhole(outcome);
    outcomes.push(outcome);
  }
  expect(isDead(pid)).toBe(true);
  return outcomes;
};

describe("request recovery", () => {
  it("decode worker dies mid-stream → the answer migrates and continues with no gap and no duplicate", async () => {
    t = await startTestCluster({
      prefill: 1,
      decode: 2,
      env: { ...FAST, TANDEM_FAULT: "decode-exit-after-tokens:6", TANDEM_FAULT_ONLY: "decode-0" },
    });
    const victim = t.cluster.processes.find((p) => p.id === "decode-0")!.child.pid!;
    const outcomes = await serveUntilDead(t, victim);
    // The answer that was streaming when decode-0 died finished on decode-1.
    const last = outcomes.at(-1)!;
    expect(last.final._tag === "GenerateDone" && last.final.route.decodeWorker).toBe("decode-1");
    expect((await t.brokerStats()).activeLeases).toEqual([]);
  }, 90_000);

  it("decode worker dies before its KV arrives → the request is re-prefilled for another decode worker", async () => {
    t = await startTestCluster({
      prefill: 1,
      decode: 2,
      env: { ...FAST, TANDEM_FAULT: "decode-exit-after-kv-expect", TANDEM_FAULT_ONLY: "decode-0" },
    });
    await serveUntilDead(t, t.cluster.processes.find((p) => p.id === "decode-0")!.child.pid!);
    const stats = await t.brokerStats();
    expect(stats.activeLeases).toEqual([]);
    expect(stats.aborted + stats.expired).toBeGreaterThanOrEqual(1);
  }, 90_000);

  it("prefill worker dies → the request is re-routed to another prefill worker", async () => {
    t = await startTestCluster({
      prefill: 2,
      decode: 1,
      env: { ...FAST, TANDEM_FAULT: `prefill-exit-on-prompt:${PROMPT}`, TANDEM_FAULT_ONLY: "prefill-0" },
    });
    const outcomes = await serveUntilDead(t, t.cluster.processes.find((p) => p.id === "prefill-0")!.child.pid!);
    const last = outcomes.at(-1)!;
    expect(last.final._tag === "GenerateDone" && last.final.route.prefillWorker).toBe("prefill-1");
  }, 90_000);

  it("a poison request that kills every prefill worker it reaches fails typed before its deadline; the pool comes back", async () => {
    t = await startTestCluster({ prefill: 3, decode: 1, env: { ...FAST, TANDEM_FAULT: "prefill-exit-on-prompt:POISON" } });
    const firstPids = t.pids("prefill");
    const deadlineMs = 20_000;
    const outcome = await generate(t.nc, t.subjects, { prompt: "POISON pill", maxTokens: 8, timeoutMs: deadlineMs });
    expect(outcome.final._tag).toBe("GenerateFailed");
    if (outcome.final._tag !== "GenerateFailed") return;
    expect(outcome.final.error).toMatchObject({ code: "InvalidRequest", reason: "poison_request" });
    expect(outcome.totalMs).toBeLessThan(deadlineMs);
    expect(firstPids.every(isDead)).toBe(true);
    // The node's pool supervisor restarted the dead workers: the cluster keeps serving.
    await expect.poll(() => t!.cluster.restarts(), { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    await expect.poll(() => t!.answering("tandem-prefill"), { timeout: 60_000, interval: 500 }).toBe(3);
    expectWhole(await generate(t.nc, t.subjects, { prompt: PROMPT, maxTokens: MAX_TOKENS, timeoutMs: 30_000 }));
  }, 120_000);
});
