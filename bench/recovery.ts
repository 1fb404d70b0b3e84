// `npm run bench:recovery`: how fast a killed worker leaves routing and how fast its pool is back to strength.
// A real local cluster (2 prefill + 2 decode processes, node supervision on); each round SIGKILLs one worker
// and watches membership through the same code the gateway routes with (`watchMembership(...).live`), polled
// every 5 ms. One JSON line per figure on stdout, each beside its bound (the heartbeat interval it is built on);
// progress on stderr.
import { parseArgs } from "node:util";
import { Effect, Layer } from "effect";
import { round, summary } from "../src/cli/percentiles.ts";
import { startLocalCluster } from "../src/cluster/local-cluster.ts";
import { subjectsFor } from "../src/protocol/index.ts";
import { Log } from "../src/runtime/log.ts";
import { MISSED_HEARTBEATS_ALLOWED, watchMembership } from "../src/transport/membership.ts";
import { NatsClient } from "../src/transport/nats-client.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { kills: { type: "string", default: "10" }, "heartbeat-ms": { type: "string", default: "1000" } },
});
const kills = Number(values.kills);
const heartbeatMs = Number(values["heartbeat-ms"]);
const POLL_MS = 5;
const progress = (line: string) => process.stderr.write(`${line}\n`);

const cluster = await startLocalCluster({ prefill: 2, decode: 2, env: { TANDEM_HEARTBEAT_MS: String(heartbeatMs) } });
const subjects = subjectsFor(cluster.cluster);

const rounds = Effect.gen(function* () {
  const membership = yield* watchMembership(subjects.membersBucket, heartbeatMs);
  const leaveMs: number[] = [];
  const backMs: number[] = [];
  const workers = () => cluster.processes.filter((p) => p.role === "prefill" || p.role === "decode");
  const waitFor = (done: (live: ReadonlyArray<{ id: string; pid: number }>) => boolean, limitMs: number) =>
    Effect.gen(function* () {
      const started = performance.now();
      while (performance.now() - started < limitMs) {
        if (done(yield* membership.live)) return performance.now();
        yield* Effect.sleep(POLL_MS);
      }
      return Number.NaN;
    });
  // Everyone live before the first kill.
  yield* waitFor((live) => live.length >= 4, 30_000);
  for (let n = 0; n < kills; n++) {
    const victim = workers()[n % 4]!;
    const pid = victim.child.pid!;
    const killedAt = performance.now();
    victim.child.kill("SIGKILL");
    const leftAt = yield* waitFor((live) => !live.some((m) => m.pid === pid), heartbeatMs * 10);
    const backAt = yield* waitFor((live) => live.some((m) => m.id === victim.id && m.pid !== pid), 60_000);
    leaveMs.push(leftAt - killedAt);
    backMs.push(backAt - killedAt);
    progress(`round ${n + 1}/${kills}: ${victim.id} left routing after ${round(leftAt - killedAt)} ms, back after ${round(backAt - killedAt)} ms`);
    // Let the restarted worker settle (model loaded, a few heartbeats) before the next kill.
    yield* Effect.sleep(heartbeatMs * 2);
  }
  return { leaveMs, backMs };
});

try {
  const { leaveMs, backMs } = await Effect.runPromise(
    Effect.scoped(rounds).pipe(
      Effect.provide(Layer.mergeAll(NatsClient.layer({ servers: cluster.natsUrl, name: "tandem-bench-recovery" }), Log.layer({ role: "bench" }))),
    ),
  );
  const bound = heartbeatMs * MISSED_HEARTBEATS_ALLOWED;
  const leave = summary(leaveMs);
  console.log(JSON.stringify({
    bench: "recovery",
    metric: "killed_worker_leaves_routing_ms",
    kills,
    heartbeatMs,
    ...leave,
    max: round(Math.max(...leaveMs)),
    target: `p99 <= ${MISSED_HEARTBEATS_ALLOWED} heartbeats (${bound} ms)`,
    baseline: { heartbeatMs, twoHeartbeatsMs: bound },
    met: leave.p99 <= bound,
  }));
  console.log(JSON.stringify({
    bench: "recovery",
    metric: "pool_back_to_strength_ms",
    kills,
    heartbeatMs,
    ...summary(backMs),
    max: round(Math.max(...backMs)),
    note: "SIGKILL to the restarted process's first heartbeat: node supervisor backoff + process start + model load",
  }));
} finally {
  await cluster.stop();
}
