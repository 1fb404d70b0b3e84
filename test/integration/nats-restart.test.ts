// nats-server crashes and comes back under load: every client (the test's, the gateway, the workers, the
// broker) reconnects within 5 s; every request in flight ends with the whole answer or a typed error, none
// after its deadline; membership (a memory bucket the restart wiped) comes back and the cluster serves again.
import { Events } from "nats";
import { afterEach, beforeAll, expect, it } from "vitest";
import { generate, type GenerateOutcome } from "../../src/client/client.ts";
import { referenceFor, startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster | undefined;
afterEach(async () => {
  await t?.stop();
  t = undefined;
});

const PROMPT = "Once upon a time";
const MAX_TOKENS = 24;
const DEADLINE_MS = 8_000;
let reference: ReadonlyArray<number> = [];
beforeAll(async () => {
  reference = await referenceFor(PROMPT, MAX_TOKENS);
});

it("NATS restart under load: reconnect within 5 s, in-flight requests complete or fail typed before their deadline", async () => {
  t = await startTestCluster({ prefill: 1, decode: 2, env: { TANDEM_HEARTBEAT_MS: "250" } });
  const tc = t;
  let disconnectedAt = 0;
  let reconnectedAt = 0;
  void (async () => {
    for await (const s of tc.nc.status()) {
      if (s.type === Events.Disconnect && disconnectedAt === 0) disconnectedAt = performance.now();
      if (s.type === Events.Reconnect && reconnectedAt === 0) reconnectedAt = performance.now();
    }
  })();

  const outcomes: GenerateOutcome[] = [];
  let restartedAt = 0;
  let stopLoad = false;
  const client = async () => {
    while (!stopLoad) {
      const outcome = await generate(tc.nc, tc.subjects, { prompt: PROMPT, maxTokens: MAX_TOKENS, timeoutMs: DEADLINE_MS });
      outcomes.push(outcome);
      // A client backs off after a failure rather than spinning while the cluster reconnects.
      if (outcome.final._tag === "GenerateFailed") await new Promise((r) => setTimeout(r, 100));
    }
  };
  const load = Promise.all([client(), client(), client()]);
  await new Promise((r) => setTimeout(r, 3_000));
  const before = outcomes.length;
  const crashAt = performance.now();
  await tc.cluster.nats!.restart(1_000);
  restartedAt = performance.now();
  await new Promise((r) => setTimeout(r, 8_000));
  stopLoad = true;
  await load;

  // The test's own connection came back within 5 s of the server being up again.
  expect(disconnectedAt).toBeGreaterThanOrEqual(crashAt);
  expect(reconnectedAt).toBeGreaterThan(0);
  expect(reconnectedAt - restartedAt).toBeLessThan(5_000);
  expect(before).toBeGreaterThan(0);
  if (process.env.TANDEM_TEST_VERBOSE) {
    console.log(outcomes.map((o) => `${o.final._tag === "GenerateDone" ? "done" : `${o.final.error.code}/${o.final.error.reason}`} ${o.totalMs.toFixed(0)}`).join("\n"));
  }
  for (const o of outcomes) {
    if (o.final._tag === "GenerateDone") {
      expect(o.tokens).toEqual(reference);
      expect(o.duplicateChunks + o.missingChunks).toBe(0);
    } else {
      // Typed by the server, not the client giving up on a silent one.
      expect(o.final.error.reason).not.toBe("client_timeout");
      expect(["Unavailable", "DeadlineExceeded", "Overloaded"]).toContain(o.final.error.code);
    }
    expect(o.totalMs).toBeLessThan(DEADLINE_MS + 1_000);
  }
  // Serving again: the last requests of the run completed.
  expect(outcomes.slice(-3).map((o) => o.final._tag)).toEqual(["GenerateDone", "GenerateDone", "GenerateDone"]);
  const done = await generate(tc.nc, tc.subjects, { prompt: PROMPT, maxTokens: MAX_TOKENS, timeoutMs: DEADLINE_MS });
  expect(done.tokens).toEqual(reference);
}, 120_000);
