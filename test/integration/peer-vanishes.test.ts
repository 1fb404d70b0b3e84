// A decode worker that dies before its KV arrives must not hang the request: the caller gets a typed
// Unavailable before the deadline and the broker's lease for that transfer is released.
import { afterEach, describe, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster | undefined;

afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const leaseKeys = async (tc: TestCluster) => {
  const kv = await tc.nc.jetstream().views.kv(tc.subjects.leasesBucket);
  const keys: string[] = [];
  for await (const entry of await kv.watch()) {
    if (entry.operation === "PUT") keys.push(entry.key);
    else keys.splice(keys.indexOf(entry.key), 1);
    if (entry.delta === 0) break;
  }
  return keys;
};

describe("a peer vanishes", () => {
  it("decode worker exits after accepting the transfer, before any KV arrives → Unavailable before the deadline, lease released", async () => {
    t = await startTestCluster({
      prefill: 1,
      decode: 1,
      restartWorkers: false,
      env: { TANDEM_LEASE_TTL_MS: "4000", TANDEM_KV_STALL_MS: "1000" },
      decodeEnv: { TANDEM_FAULT: "decode-exit-after-kv-expect" },
    });
    const decodePid = t.pids("decode")[0]!;
    const deadlineMs = 10_000;
    const outcome = await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 16, timeoutMs: deadlineMs });
    expect(outcome.final._tag).toBe("GenerateFailed");
    if (outcome.final._tag !== "GenerateFailed") return;
    expect(outcome.final.error.code).toBe("Unavailable");
    expect(outcome.totalMs).toBeLessThan(deadlineMs);
    // the decode process really is gone
    expect(() => process.kill(decodePid, 0)).toThrow();
    const stats = await t.brokerStats();
    expect(stats.opened).toBe(1);
    expect(stats.activeLeases).toEqual([]);
    expect(stats.aborted + stats.expired).toBe(1);
    expect(stats.completed).toBe(0);
    expect(await leaseKeys(t)).toEqual([]);
  });

  it("a decode worker killed with SIGKILL leaves routing: requests fail fast and typed, never hang", async () => {
    t = await startTestCluster({ prefill: 1, decode: 1, restartWorkers: false });
    const ok = await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 8 });
    expect(ok.final._tag).toBe("GenerateDone");
    const decode = t.cluster.processes.find((p) => p.role === "decode")!.child;
    decode.kill("SIGKILL");
    await new Promise((r) => decode.once("exit", r));
    for (const waitMs of [0, 2_500]) {
      await new Promise((r) => setTimeout(r, waitMs));
      const outcome = await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 8, timeoutMs: 10_000 });
      expect(outcome.final._tag).toBe("GenerateFailed");
      if (outcome.final._tag === "GenerateFailed") expect(outcome.final.error.code).toBe("Unavailable");
      expect(outcome.totalMs).toBeLessThan(5_000);
    }
    const stats = await t.brokerStats();
    expect(stats.activeLeases).toEqual([]);
  });
});
