// `tandem demo`: start a real local cluster, send concurrent requests over several prompts, check every
// answer against the monolithic run, stop the cluster, print one JSON summary as the last line.
import { Effect } from "effect";
import { connect } from "nats";
import { generate, type GenerateOutcome } from "../client/client.ts";
import { startLocalCluster } from "../cluster/local-cluster.ts";
import { monolithicTokens } from "../cluster/monolithic.ts";
import { resolveModelPath } from "../engine/model-resolution.ts";
import { BrokerStats, BrokerStatsQuery, decodeMessage, encodeMessage, subjectsFor } from "../protocol/index.ts";
import { summary } from "./percentiles.ts";
import { runtimeName } from "../runtime/runtime-name.ts";

export const DEMO_PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily wanted to play with her friend Tom in the park, but",
  "One day, a big red ball",
];

export interface DemoOptions {
  readonly requests: number;
  readonly maxTokens: number;
  readonly prefill: number;
  readonly decode: number;
  readonly modelFlag: string | undefined;
  readonly progress: (line: string) => void;
}

export const runDemo = async (options: DemoOptions) => {
  const modelPath = resolveModelPath(options.modelFlag);
  options.progress(`model ${modelPath}`);
  const reference = await Effect.runPromise(monolithicTokens(modelPath, DEMO_PROMPTS, options.maxTokens));
  options.progress(`monolithic reference computed for ${DEMO_PROMPTS.length} prompts`);
  const cluster = await startLocalCluster({ prefill: options.prefill, decode: options.decode, modelPath });
  options.progress(
    `cluster up: ${cluster.processes.map((p) => `${p.id}(pid ${p.child.pid})`).join(", ")} on ${cluster.natsUrl}`,
  );
  const subjects = subjectsFor(cluster.cluster);
  const nc = await connect({ servers: cluster.natsUrl, name: "tandem-demo" });
  try {
    const prompts = Array.from({ length: options.requests }, (_, i) => DEMO_PROMPTS[i % DEMO_PROMPTS.length]!);
    const outcomes: GenerateOutcome[] = await Promise.all(
      prompts.map((prompt, i) => generate(nc, subjects, { prompt, maxTokens: options.maxTokens, requestId: `demo-${i}` })),
    );
    // Which runtime each actor process runs on, as it reports itself in $SRV.INFO.
    const runtimes = new Set<string>();
    for await (const info of await nc.services.client().info()) {
      if (info.metadata?.cluster === cluster.cluster && info.metadata.runtime) runtimes.add(info.metadata.runtime);
    }
    const statsReply = await nc.request(subjects.broker("stats"), encodeMessage(BrokerStatsQuery, { _tag: "BrokerStatsQuery" }));
    const stats = await Effect.runPromise(decodeMessage(BrokerStats)(statsReply.data));
    const done = outcomes.flatMap((o) => (o.final._tag === "GenerateDone" ? [o.final] : []));
    const matches = outcomes.map((o, i) =>
      o.final._tag === "GenerateDone" && o.missingChunks === 0 && o.duplicateChunks === 0 &&
      JSON.stringify(o.tokens) === JSON.stringify(reference.get(prompts[i]!))
    );
    const failures = outcomes.flatMap((o) => (o.final._tag === "GenerateFailed" ? [o.final.error] : []));
    const prefillPids = [...new Set(done.map((d) => d.route.prefillPid))].sort();
    const decodePids = [...new Set(done.map((d) => d.route.decodePid))].sort();
    const matchesMonolithic = matches.every(Boolean);
    return {
      ok: matchesMonolithic && done.length === options.requests && prefillPids.every((p) => !decodePids.includes(p)) &&
        stats.activeLeases.length === 0,
      requests: options.requests,
      completed: done.length,
      failed: failures.length,
      failures: failures.slice(0, 5),
      matchesMonolithic,
      prompts: DEMO_PROMPTS.length,
      prefillPids,
      decodePids,
      kvBytesMoved: stats.bytesMoved,
      transfersCompleted: stats.completed,
      leasesOutstanding: stats.activeLeases.length,
      completionTokens: done.reduce((n, d) => n + d.usage.completionTokens, 0),
      runtime: runtimeName(),
      workerRuntimes: [...runtimes].sort(),
      ttftMs: summary(outcomes.map((o) => o.ttftMs)),
      tpotMs: summary(done.map((d) => d.timings.tpotMs)),
      sample: outcomes[0]?.text ?? "",
    };
  } finally {
    await nc.close();
    await cluster.stop();
    options.progress("cluster stopped");
  }
};
