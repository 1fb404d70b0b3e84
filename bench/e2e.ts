// `npm run bench:e2e`: what disaggregation costs and buys end to end. The same prompts and engine settings
// run through the monolithic engine in-process, through one monolithic server process over NATS, and through a
// real local cluster (2 prefill + 2 decode processes), at concurrency 1 and 8; one JSON line per result on
// stdout, progress on stderr.
import { parseArgs } from "node:util";
import { Effect } from "effect";
import { connect } from "nats";
import { generate } from "../src/client/client.ts";
import { DEMO_PROMPTS } from "../src/cli/demo.ts";
import { round, summary } from "../src/cli/percentiles.ts";
import { startLocalCluster } from "../src/cluster/local-cluster.ts";
import { monolithicEngine, monolithicTokens } from "../src/cluster/monolithic.ts";
import { resolveModelPath } from "../src/engine/model-resolution.ts";
import { subjectsFor } from "../src/protocol/index.ts";

const CONCURRENCIES = [1, 8] as const;

type Path = "monolithic" | "monolithic_served" | "disaggregated";

interface Sample {
  readonly prompt: string;
  /** False when the request failed or its stream was incomplete; such samples are not measured. */
  readonly completed: boolean;
  readonly tokens: ReadonlyArray<number>;
  readonly ttftMs: number;
  readonly totalMs: number;
}

type Call = (prompt: string) => Effect.Effect<Sample, unknown>;

interface Scenario {
  readonly concurrency: number;
  readonly samples: ReadonlyArray<Sample>;
  readonly requestsPerSec: number;
  readonly ttftMs: { readonly p50: number; readonly p99: number };
  readonly tpotMs: { readonly p50: number; readonly p99: number };
}

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    requests: { type: "string" },
    "max-tokens": { type: "string" },
    warmup: { type: "string" },
  },
});

const count = (name: string, raw: string | undefined, fallback: number, min: number) => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench:e2e: --${name} must be an integer >= ${min}, got "${raw}"\n`);
    process.exit(2);
  }
  return n;
};

/** Measured requests per scenario (the same count at every concurrency). */
const requests = count("requests", values.requests, 512, 1);
const maxTokens = count("max-tokens", values["max-tokens"], 32, 1);
/** Sequential requests before each path's first scenario (model pages, JIT, NATS connections). */
const warmup = count("warmup", values.warmup, 10, 0);

const benchStarted = performance.now();
const progress = (line: string) =>
  process.stderr.write(`bench:e2e [${((performance.now() - benchStarted) / 1000).toFixed(1)}s] ${line}\n`);
const emit = (record: object) => process.stdout.write(`${JSON.stringify(record)}\n`);

/** Runs `n` requests over DEMO_PROMPTS with `concurrency` in flight (a slot starts its next request when one ends). */
const runRequests = (call: Call, n: number, concurrency: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => DEMO_PROMPTS[i % DEMO_PROMPTS.length]!), call, { concurrency });

const scenario = (path: Path, call: Call, concurrency: number) =>
  Effect.gen(function* () {
    progress(`${path}: ${requests} requests at concurrency ${concurrency}`);
    const started = performance.now();
    const samples = yield* runRequests(call, requests, concurrency);
    const seconds = (performance.now() - started) / 1000;
    const done = samples.filter((s) => s.completed);
    const result: Scenario = {
      concurrency,
      samples,
      requestsPerSec: round(done.length / seconds),
      ttftMs: summary(done.map((s) => s.ttftMs)),
      tpotMs: summary(done.filter((s) => s.tokens.length > 1).map((s) => (s.totalMs - s.ttftMs) / (s.tokens.length - 1))),
    };
    emit({
      bench: "e2e",
      path,
      concurrency,
      requests,
      completed: done.length,
      requestsPerSec: result.requestsPerSec,
      ttftMs: result.ttftMs,
      tpotMs: result.tpotMs,
    });
    return result;
  });

/** Warm-up, then every concurrency in turn. */
const runPath = (path: Path, call: Call) =>
  Effect.gen(function* () {
    progress(`${path}: ${warmup} warm-up requests`);
    yield* runRequests(call, warmup, 1);
    const out: Scenario[] = [];
    for (const concurrency of CONCURRENCIES) out.push(yield* scenario(path, call, concurrency));
    return out;
  });

const monolithic = (modelPath: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* monolithicEngine(modelPath);
      const call: Call = (prompt) =>
        Effect.gen(function* () {
          const started = performance.now();
          let firstAt = Number.NaN;
          const tokens = yield* engine.generate(yield* engine.tokenize(prompt), maxTokens, () => {
            if (Number.isNaN(firstAt)) firstAt = performance.now();
          });
          return { prompt, completed: true, tokens, ttftMs: firstAt - started, totalMs: performance.now() - started };
        });
      return yield* runPath("monolithic", call);
    }),
  );

/**
 * The floor under every hop: a plain NATS request/reply (128 bytes) between two connections on the
 * cluster's own server. The disaggregated TTFT needs 1.5 of these more than the monolithic one
 * (client → gateway → prefill worker → client).
 */
let natsRoundTrip = { p50: Number.NaN, p99: Number.NaN };
const measureNatsRoundTrip = async (servers: string) => {
  const responder = await connect({ servers, name: "tandem-bench-echo" });
  const requester = await connect({ servers, name: "tandem-bench-ping" });
  responder.subscribe("bench.echo", { callback: (_err, msg) => msg.respond(msg.data) });
  await responder.flush();
  const payload = new Uint8Array(128);
  const times: number[] = [];
  for (let i = 0; i < 300; i++) {
    const started = performance.now();
    await requester.request("bench.echo", payload, { timeout: 1_000 });
    if (i >= 50) times.push(performance.now() - started);
  }
  await requester.close();
  await responder.close();
  return summary(times);
};

/** A path served over NATS by real processes: the disaggregated cluster, or one monolithic server. */
const served = async (path: "disaggregated" | "monolithic_served", modelPath: string) => {
  progress(path === "disaggregated" ? "starting cluster: 2 prefill + 2 decode workers" : "starting one monolithic server process");
  const cluster = await startLocalCluster({ prefill: 2, decode: 2, modelPath, monolithic: path === "monolithic_served" });
  try {
    const nc = await connect({ servers: cluster.natsUrl, name: "tandem-bench-e2e" });
    try {
      const subjects = subjectsFor(cluster.cluster);
      if (path === "disaggregated") {
        natsRoundTrip = await measureNatsRoundTrip(cluster.natsUrl);
        emit({ bench: "e2e", baseline: "nats_request_reply", payloadBytes: 128, roundTripMs: natsRoundTrip });
      }
      const call: Call = (prompt) =>
        Effect.promise(() => generate(nc, subjects, { prompt, maxTokens })).pipe(
          Effect.map((o) => {
            if (o.final._tag === "GenerateFailed") progress(`request failed: ${o.final.error.code} ${o.final.error.message}`);
            const completed = o.final._tag === "GenerateDone" && o.missingChunks === 0 && o.duplicateChunks === 0;
            if (o.final._tag === "GenerateDone" && !completed) {
              progress(`request incomplete: missing ${o.missingChunks}, duplicates ${o.duplicateChunks}, chunks ${o.chunks.length}/${o.final.chunks}`);
            }
            return { prompt, completed, tokens: o.tokens, ttftMs: o.ttftMs, totalMs: o.totalMs };
          }),
        );
      return await Effect.runPromise(runPath(path, call));
    } finally {
      await nc.close();
    }
  } finally {
    await cluster.stop();
    progress("cluster stopped");
  }
};

const main = async () => {
  const modelPath = resolveModelPath(undefined);
  progress(`model ${modelPath}; ${requests} requests per scenario, max ${maxTokens} tokens, ${warmup} warm-up`);
  // The reference answer per prompt: one uninterrupted sequence with nothing else in the batch.
  const reference = new Map(
    [...(await Effect.runPromise(monolithicTokens(modelPath, DEMO_PROMPTS, maxTokens)))].map(([p, t]) => [p, JSON.stringify(t)]),
  );
  const differing = (s: Scenario) => s.samples.filter((x) => !x.completed || JSON.stringify(x.tokens) !== reference.get(x.prompt)).length;
  const mono = await Effect.runPromise(monolithic(modelPath));
  const monoServed = await served("monolithic_served", modelPath);
  const disagg = await served("disaggregated", modelPath);
  for (const [path, scenarios] of [["monolithic", mono], ["monolithic_served", monoServed], ["disaggregated", disagg]] as const) {
    for (const s of scenarios) {
      const n = differing(s);
      if (n > 0) progress(`${path} concurrency ${s.concurrency}: ${n}/${requests} answers differ from the reference`);
    }
  }
  for (const [compare, baseline] of [["disaggregated_vs_monolithic", mono], ["disaggregated_vs_monolithic_served", monoServed]] as const) {
    CONCURRENCIES.forEach((concurrency, k) => {
      const m = baseline[k]!;
      const d = disagg[k]!;
      emit({
        bench: "e2e",
        compare,
      concurrency,
      ttftP50OverheadMs: round(d.ttftMs.p50 - m.ttftMs.p50),
      ttftP50OverheadInNatsRoundTrips: round((d.ttftMs.p50 - m.ttftMs.p50) / natsRoundTrip.p50),
      ttftP50Ratio: round(d.ttftMs.p50 / m.ttftMs.p50),
      tpotP50Ratio: round(d.tpotMs.p50 / m.tpotMs.p50),
      throughputRatio: round(d.requestsPerSec / m.requestsPerSec),
      matchesMonolithic: differing(d) === 0,
      });
    });
  }
};

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench:e2e: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
