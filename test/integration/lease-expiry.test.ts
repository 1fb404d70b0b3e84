// A receiver killed in the middle of a KV transfer strands nothing: the broker's lease expires within its
// TTL, its accounting returns to where it was, and the caller gets a typed error before its deadline.
import { afterAll, beforeAll, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";

const LEASE_TTL_MS = 2_000;
let t: TestCluster;

beforeAll(async () => {
  // Small chunks make the transfer long enough to kill the receiver in the middle of it; the sender waits
  // longer for credit than the lease lives, so it is the broker's TTL that ends the transfer.
  t = await startTestCluster({
    prefill: 1,
    decode: 1,
    restartWorkers: false,
    env: { TANDEM_KV_CHUNK_BYTES: "1024", TANDEM_LEASE_TTL_MS: String(LEASE_TTL_MS), TANDEM_KV_STALL_MS: "8000" },
  });
});

afterAll(async () => {
  await t?.stop();
});

it("killing the receiving process mid-transfer: the lease ends (expiry or abort) within its TTL and the broker's accounting returns", async () => {
  const before = await t.brokerStats();
  const decode = t.cluster.processes.find((p) => p.role === "decode")!.child;
  let chunksSeen = 0;
  let killedAt = 0;
  const sniffer = t.nc.subscribe(`tandem.v1.${t.subjects.cluster}.kv.*.data`, {
    callback: () => {
      chunksSeen++;
      if (chunksSeen === 3 && killedAt === 0) {
        killedAt = performance.now();
        decode.kill("SIGKILL");
      }
    },
  });
  const prompt = "Once upon a time there was a little girl named Lily. ".repeat(25);
  const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: 8, timeoutMs: 15_000 });
  sniffer.unsubscribe();
  expect(killedAt).toBeGreaterThan(0);
  expect(outcome.final._tag).toBe("GenerateFailed");
  if (outcome.final._tag === "GenerateFailed") expect(outcome.final.error.code).toBe("Unavailable");

  // Poll the broker until the lease is gone; it must go within the TTL (plus the sweep interval).
  let after = await t.brokerStats();
  while (after.activeLeases.length > 0 && performance.now() - killedAt < LEASE_TTL_MS + 1_000) {
    await new Promise((r) => setTimeout(r, 50));
    after = await t.brokerStats();
  }
  expect(after.activeLeases).toEqual(before.activeLeases);
  expect(after.opened - before.opened).toBe(1);
  expect(after.completed).toBe(before.completed);
  expect(after.bytesMoved).toBe(before.bytesMoved);
  expect(after.expired + after.aborted - before.expired - before.aborted).toBe(1);
});
