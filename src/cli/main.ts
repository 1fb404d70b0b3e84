// The `tandem` command line: run a local cluster, call it, demo it, or run one actor process.
import { parseArgs } from "node:util";
import { connect } from "nats";
import { generate } from "../client/client.ts";
import { type LocalCluster, startLocalCluster } from "../cluster/local-cluster.ts";
import { subjectsFor } from "../protocol/index.ts";
import { readSettings, SETTINGS_HELP } from "../runtime/settings.ts";
import { runDemo } from "./demo.ts";
import { runStatus } from "./status.ts";
import { positiveInt } from "./usage.ts";
import { type Role, runRole } from "./roles.ts";
import { PERF_HELP, runPerf } from "./perf.ts";
import { PLAN_HELP, runPlan } from "./plan.ts";
import { runSimulate, SIMULATE_HELP } from "./simulate.ts";
import { DEFAULT_EMULATED_MODEL } from "../engine/emulated/profile.ts";

const HELP = `tandem — disaggregated LLM serving over NATS

Usage:
  tandem up [--prefill N|CHIP[:N]] [--decode N|CHIP[:N]] [--emulate-model ID] [--model PATH]
      Start a local cluster (nats-server unless NATS_URL is set, gateway, KV broker,
      N prefill and N decode workers (default 2), each its own OS process). Ctrl-C stops it all.
      A CHIP (hardware catalog id, e.g. --prefill nvidia-b200 --decode intel-gaudi3-hl325l) makes
      that pool emulated: real llama.cpp tokens, the chip's step timing for the --emulate-model
      (default ${DEFAULT_EMULATED_MODEL}) from the performance model, its vendor's native KV format on the
      wire. TANDEM_EMULATE_* below tune it (TANDEM_EMULATE_TIME_SCALE=0.01 runs 100x faster).
  tandem generate "<prompt>" [--max-tokens N] [--model ID] [--timeout-ms MS]
      Stream a completion from a running cluster (NATS_URL, default nats://127.0.0.1:4222).
  tandem status [--json]
      Show a running cluster (NATS_URL): workers by pool with load, heartbeat and health (serving,
      restarting, quarantined), driver faults, driver and process restart counts, quarantined workers,
      services, KV broker counts.
  tandem demo [--json] [--requests N] [--max-tokens N]
      Start a cluster, send concurrent requests, check each against a monolithic run,
      stop the cluster. The last line is a JSON summary; exit code 0 only if it is ok.
  tandem gateway|broker|prefill|decode [--id ID] [--model PATH]
      Run one actor process (what \`up\` and compose.yaml start).
${PERF_HELP.replace(/^tandem/, "  tandem")}
${PLAN_HELP.replace(/^tandem/, "  tandem")}
${SIMULATE_HELP.replace(/^tandem/, "  tandem")}
  tandem monolithic [--id ID] [--model PATH]
      Serve the generate call from one process (prefill and decode together): the baseline
      that bench:e2e measures disaggregation against.

Environment:${SETTINGS_HELP}
`;

// `perf`, `plan` and `simulate` have their own flags; hand them the command line before the shared parser would reject them.
if (process.argv[2] === "perf") process.exit(await runPerf(process.argv.slice(3)));
if (process.argv[2] === "plan") process.exit(await runPlan(process.argv.slice(3)));
if (process.argv[2] === "simulate") process.exit(await runSimulate(process.argv.slice(3)));

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    prefill: { type: "string" },
    decode: { type: "string" },
    model: { type: "string" },
    "emulate-model": { type: "string" },
    id: { type: "string" },
    "max-tokens": { type: "string" },
    "timeout-ms": { type: "string" },
    requests: { type: "string" },
  },
});

/** A positive-integer flag or its default; a bad value ends the command with the flag named (exit 2). */
const intFlag = (name: string, raw: string | undefined, fallback: number) => (raw === undefined ? fallback : positiveInt(name, raw));

function fail(message: string): never {
  process.stderr.write(`tandem: ${message}\n`);
  process.exit(2);
}

/** A pool flag of `tandem up`: `3` (workers), `nvidia-b200` (2 emulated B200 workers) or `nvidia-b200:3`. */
const poolFlag = (name: string, raw: string | undefined): { readonly count: number; readonly chip?: string } => {
  if (raw === undefined) return { count: 2 };
  if (/^\d+$/.test(raw)) return { count: positiveInt(name, raw) };
  const [chip, count] = raw.split(":");
  return { chip: chip!, count: count === undefined ? 2 : positiveInt(name, count) };
};

const up = async () => {
  const prefill = poolFlag("prefill", values.prefill);
  const decode = poolFlag("decode", values.decode);
  const emulatedModel = values["emulate-model"] ?? process.env.TANDEM_EMULATE_MODEL ?? DEFAULT_EMULATED_MODEL;
  const settings = readSettings();
  const describe = (pool: typeof prefill) => `${pool.count}${pool.chip === undefined ? "" : ` emulated ${pool.chip}`}`;
  process.stderr.write(`starting ${describe(prefill)} prefill and ${describe(decode)} decode workers...\n`);
  let stopping = false;
  const cluster: LocalCluster = await startLocalCluster({
    prefill: prefill.count,
    decode: decode.count,
    emulate: { prefill: prefill.chip, decode: decode.chip, model: emulatedModel },
    cluster: settings.cluster,
    natsUrl: settings.natsUrl,
    modelPath: values.model,
    // Children log warnings and errors only, unless the user asks for more.
    env: { TANDEM_LOG_LEVEL: process.env.TANDEM_LOG_LEVEL ?? "warn" },
    onOutput: (role, line) => process.stderr.write(`[${role}] ${line}\n`),
    onProcessExit: (id, code, signal) => {
      if (!stopping) process.stderr.write(`[${id}] exited (${signal ?? code}); the node restarts it\n`);
    },
    // The node's tree gave up (a pool crash-looped): stop, and exit non-zero for whatever runs `tandem up`.
    onGiveUp: (message) => {
      process.stderr.write(`tandem: the node's supervision tree gave up: ${message}\n`);
      // (During start-up there is no cluster to stop yet: startLocalCluster fails and cleans up on its own.)
      try {
        void cluster.stop().finally(() => process.exit(1));
      } catch {
        process.exit(1);
      }
    },
  });
  const chipOf = (role: string) => (role === "prefill" ? prefill.chip : role === "decode" ? decode.chip : undefined);
  const pids = cluster.processes.map((p) => {
    const chip = chipOf(p.role);
    return `  ${p.id.padEnd(12)} pid ${p.child.pid}${chip === undefined ? "" : `  ${chip} (emulated: ${emulatedModel} timing)`}`;
  }).join("\n");
  process.stdout.write(
    `Tandem cluster "${cluster.cluster}" is up on ${cluster.natsUrl}\n${pids}\n\n` +
      `Call it:\n  NATS_URL=${cluster.natsUrl} npx tsx src/cli/main.ts generate "Once upon a time"\n` +
      `  or any NATS client: request on ${subjectsFor(cluster.cluster).generate} (msgpack, see docs/protocol.md)\n` +
      `Ctrl-C stops everything.\n`,
  );
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write("stopping cluster...\n");
    await cluster.stop();
    process.stderr.write("stopped.\n");
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
};

const generateCommand = async () => {
  const prompt = positionals.slice(1).join(" ");
  if (!prompt) fail('generate needs a prompt: tandem generate "Once upon a time"');
  const settings = readSettings();
  const servers = settings.natsUrl ?? "nats://127.0.0.1:4222";
  const nc = await connect({ servers, name: "tandem-cli" }).catch((e) => fail(`cannot reach NATS at ${servers}: ${e}`));
  const outcome = await generate(
    nc,
    subjectsFor(settings.cluster),
    {
      prompt,
      maxTokens: intFlag("max-tokens", values["max-tokens"], 64),
      ...(values.model ? { model: values.model } : {}),
      ...(values["timeout-ms"] ? { timeoutMs: intFlag("timeout-ms", values["timeout-ms"], 30_000) } : {}),
    },
    { onChunk: (chunk) => process.stdout.write(chunk.text) },
  );
  await nc.close();
  process.stdout.write("\n");
  if (outcome.final._tag === "GenerateFailed") {
    fail(`${outcome.final.error.code} (${outcome.final.error.reason}): ${outcome.final.error.message}`);
  }
  const { usage, timings, route } = outcome.final;
  process.stderr.write(
    `[${usage.promptTokens} prompt + ${usage.completionTokens} completion tokens; ttft ${timings.ttftMs.toFixed(1)} ms; ` +
      `prefill ${route.prefillWorker} (pid ${route.prefillPid}) → decode ${route.decodeWorker} (pid ${route.decodePid}), ` +
      `${route.kvBytes} KV bytes]\n`,
  );
};

const demo = async () => {
  const json = values.json === true;
  const result = await runDemo({
    requests: intFlag("requests", values.requests, 16),
    maxTokens: intFlag("max-tokens", values["max-tokens"], 48),
    prefill: intFlag("prefill", values.prefill, 2),
    decode: intFlag("decode", values.decode, 2),
    modelFlag: values.model,
    progress: (line) => process.stderr.write(`demo: ${line}\n`),
  });
  if (!json) process.stdout.write(`sample answer: ${result.sample}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(result.ok ? 0 : 1);
};

const main = async () => {
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  switch (command) {
    case "up":
      return up();
    case "generate":
      return generateCommand();
    case "demo":
      return demo();
    case "status": {
      const settings = readSettings();
      process.exitCode = await runStatus(settings.natsUrl ?? "nats://127.0.0.1:4222", settings.cluster, values.json === true);
      return;
    }
    case "gateway":
    case "broker":
    case "prefill":
    case "decode":
    case "monolithic":
      return runRole(command as Role, values.id ?? `${command}-${process.pid}`, values.model);
    default:
      fail(`unknown command "${command}"; see tandem --help`);
  }
};

main().catch((error) => fail(error instanceof Error ? error.message : String(error)));
