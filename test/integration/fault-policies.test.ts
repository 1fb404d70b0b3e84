// Driver fault classes in a live cluster, injected at the driver seam of one worker (TANDEM_FAULT_SCRIPT): the
// policy shows in membership (health, fault counts, driver restarts), in routing (a quarantined worker gets no
// more work) and on events.alert — and every answer is still the monolithic one.
import { Effect } from "effect";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { clusterStatus } from "../../src/cli/status.ts";
import { generate } from "../../src/client/client.ts";
import { AlertEvent, decodeMessage, MemberRecord } from "../../src/protocol/index.ts";
import { referenceFor, startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const PROMPT = "Once upon a time";
const MAX_TOKENS = 16;
let reference: ReadonlyArray<number> = [];
beforeAll(async () => {
  reference = await referenceFor(PROMPT, MAX_TOKENS);
});

const FAST = { TANDEM_HEARTBEAT_MS: "250" };

const member = async (tc: TestCluster, id: string): Promise<MemberRecord> => {
  const kv = await tc.nc.jetstream().views.kv(tc.subjects.membersBucket);
  const entry = await kv.get(id);
  if (entry === null) throw new Error(`no membership record for ${id}`);
  return Effect.runPromise(decodeMessage(MemberRecord)(entry.value));
};

const answer = async (tc: TestCluster) => {
  const outcome = await generate(tc.nc, tc.subjects, { prompt: PROMPT, maxTokens: MAX_TOKENS, timeoutMs: 20_000 });
  expect(outcome.final).toMatchObject({ _tag: "GenerateDone" });
  expect(outcome.tokens).toEqual(reference);
  return outcome.final._tag === "GenerateDone" ? outcome.final.route : undefined;
};

describe("fault policies in a live cluster", () => {
  it("fatal on a decode worker: quarantined, alert raised, routing sends it nothing more, answers stay whole", async () => {
    t = await startTestCluster({
      prefill: 1,
      decode: 2,
      env: FAST,
      // Driver calls on a decode worker: import (1), decode (2). The first import it gets is fatal.
      workerEnv: { "decode-0": { TANDEM_FAULT_SCRIPT: "fatal@1" } },
    });
    const alerts: AlertEvent[] = [];
    t.nc.subscribe(t.subjects.events("alert"), {
      callback: (_, msg) => void Effect.runPromise(decodeMessage(AlertEvent)(msg.data)).then((a) => alerts.push(a)),
    });
    for (let i = 0; i < 4; i++) await answer(t);
    await expect.poll(async () => (await member(t!, "decode-0")).health, { timeout: 5_000 }).toBe("quarantined");
    expect((await member(t, "decode-0")).faults?.fatal).toBe(1);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ workerId: "decode-0", faultClass: "fatal" });
    // Quarantined means out of routing: everything now decodes on decode-1.
    for (let i = 0; i < 3; i++) expect((await answer(t))?.decodeWorker).toBe("decode-1");
    // `tandem status` shows it, with the node's process restart counts beside each worker.
    const status = await clusterStatus(t.nc, t.subjects.cluster);
    expect(status.quarantined).toEqual(["decode-0"]);
    expect(status.pools.decode.find((w) => w.id === "decode-0")).toMatchObject({ health: "quarantined", faults: { fatal: 1 } });
    expect(status.nodes).toHaveLength(1);
    expect(status.nodes[0]!.processes.map((p) => p.id).sort()).toEqual(["broker-0", "decode-0", "decode-1", "gateway-0", "prefill-0"]);
  }, 120_000);

  it("device-reset on a prefill worker: the driver restarts, the request is re-routed, the worker serves again", async () => {
    t = await startTestCluster({
      prefill: 2,
      decode: 1,
      env: FAST,
      workerEnv: { "prefill-0": { TANDEM_FAULT_SCRIPT: "device-reset@1" } },
    });
    for (let i = 0; i < 4; i++) await answer(t);
    await expect.poll(async () => (await member(t!, "prefill-0")).driverRestarts, { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => (await member(t!, "prefill-0")).health, { timeout: 10_000 }).toBe("serving");
    expect((await member(t, "prefill-0")).faults?.["device-reset"]).toBe(1);
    // Back in routing: with both prefill workers idle, rotation reaches prefill-0 again. Placement ranks by the
    // load in the last heartbeat before the rotation, so each request waits for both workers to have reported
    // idle since the previous answer (a busy figure from before it would steer the pick, not the rotation).
    const idleSince = async (since: number) => {
      for (const id of ["prefill-0", "prefill-1"]) {
        await expect.poll(async () => {
          const record = await member(t!, id);
          return record.heartbeatAt > since && record.inFlight === 0;
        }, { timeout: 5_000 }).toBe(true);
      }
    };
    const routes = [];
    for (let i = 0; i < 4; i++) {
      await idleSince(Date.now());
      routes.push((await answer(t))?.prefillWorker);
    }
    expect(routes).toContain("prefill-0");
  }, 120_000);

  it("transient and resource on a prefill worker: retried in place, the batch shrinks, nothing reaches the caller", async () => {
    t = await startTestCluster({
      prefill: 1,
      decode: 1,
      env: FAST,
      workerEnv: { "prefill-0": { TANDEM_FAULT_SCRIPT: "transient@1,resource@3,interconnect@5" } },
    });
    const full = (await member(t, "prefill-0")).capacity;
    for (let i = 0; i < 3; i++) await answer(t);
    await expect.poll(async () => (await member(t!, "prefill-0")).faults, { timeout: 5_000 }).toMatchObject({
      transient: 1,
      resource: 1,
      interconnect: 1,
    });
    const record = await member(t, "prefill-0");
    expect(record.health).toBe("serving");
    expect(record.capacity).toBe(full - 1);
  }, 120_000);
});
