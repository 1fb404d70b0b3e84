// The chaos harness: a local cluster of real processes under steady load while workers are SIGKILLed and
// SIGSTOPped on a seeded schedule and every driver fault class is injected at the driver seam. Every answer is
// checked against the uninterrupted monolithic run; the summary says whether anything was lost, duplicated or
// left with a gap. The seed fixes which worker is hit when, each worker's fault sequence and the prompts sent;
// the interleaving with wall-clock time is the machine's.
import { Effect, Result } from "effect";
import { connect } from "nats";
import { generate, type GenerateOutcome } from "../client/client.ts";
import { type LocalCluster, startLocalCluster } from "../cluster/local-cluster.ts";
import { monolithicTokens } from "../cluster/monolithic.ts";
import { FAULT_CLASSES } from "../engine/faults/policy.ts";
import { mulberry32 } from "../engine/faults/fault-schedule.ts";
import type { FaultClass } from "../engine/engine.ts";
import { resolveModelPath } from "../engine/model-resolution.ts";
import { decodeMessageResult, MemberRecord, subjectsFor } from "../protocol/index.ts";

export interface ChaosOptions {
  readonly seed: number;
  readonly minutes: number;
  readonly prefill: number;
  readonly decode: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  readonly killEverySeconds: number;
  readonly stopEverySeconds: number;
  /** Kill nats-server (SIGKILL) and start it again after 1 s, this often; 0: never. */
  readonly natsRestartEverySeconds: number;
  readonly modelPath?: string;
  /** Progress lines (not the summary). */
  readonly log: (line: string) => void;
  /** Every cluster process's output, one line each, prefixed with its id. */
  readonly processOutput?: (id: string, line: string) => void;
}

export const CHAOS_DEFAULTS = {
  minutes: 3,
  prefill: 3,
  decode: 3,
  concurrency: 4,
  killEverySeconds: 10,
  stopEverySeconds: 20,
  natsRestartEverySeconds: 0,
} as const;

export interface ChaosSummary {
  readonly seed: number;
  readonly minutes: number;
  readonly accepted: number;
  readonly completed: number;
  readonly failedTyped: number;
  /** Requests with no final message before the client gave up (deadline + grace): must be 0. */
  readonly lost: number;
  readonly duplicateTokens: number;
  readonly gapTokens: number;
  /** Completed answers whose tokens differ from the monolithic run: must be 0. */
  readonly mismatched: number;
  /** Finals that came after the request's deadline: must be 0. */
  readonly overDeadline: number;
  /** Completed requests that took more than one attempt. */
  readonly migrations: number;
  /** Worker processes restarted by the node plus engine drivers restarted inside workers still alive at the end. */
  readonly restarts: number;
  readonly killed: number;
  readonly stopped: number;
  readonly natsRestarts: number;
  /** Driver faults the workers reported (their log lines), by class. */
  readonly faultsInjected: Readonly<Record<FaultClass, number>>;
  readonly quarantined: ReadonlyArray<string>;
  readonly failures: Readonly<Record<string, number>>;
  readonly ok: boolean;
}

const PROMPTS = [
  "Once upon a time",
  "Lily and Tom went to the park",
  "The little dog was sad because",
  "One day, a big bird",
  "Mom said it was time to",
  "There was a red ball in the garden",
];
const MAX_TOKENS = 24;
const DEADLINE_MS = 30_000;
/** Per driver call. A worker makes about 20–40 calls a second here, so this keeps it well under the quarantine rule (5 faults a minute). */
const RATES = "transient=0.0004,resource=0.0004,interconnect=0.0004";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const runChaos = async (options: ChaosOptions): Promise<ChaosSummary> => {
  const { seed, log } = options;
  const chaosRandom = mulberry32(seed);
  const loadRandom = mulberry32(seed ^ 0x9e3779b9);
  const modelPath = resolveModelPath(options.modelPath);
  // Counted from the workers' own fault log lines, so a worker's faults still count after it is killed.
  const faultsInjected = Object.fromEntries(FAULT_CLASSES.map((c) => [c, 0])) as Record<FaultClass, number>;
  log(`chaos: seed ${seed}, ${options.minutes} min, ${options.prefill} prefill + ${options.decode} decode workers`);
  const reference = await Effect.runPromise(monolithicTokens(modelPath, PROMPTS, MAX_TOKENS));

  // Random faults on every worker (each its own seed), and one scripted fault of every class, each on a worker the
  // seed picks, so every run injects every class whatever the random draws do.
  const ids = [...Array.from({ length: options.prefill }, (_, i) => `prefill-${i}`), ...Array.from({ length: options.decode }, (_, i) => `decode-${i}`)];
  const workerEnv: Record<string, Record<string, string>> = Object.fromEntries(
    ids.map((id, i) => [id, { TANDEM_FAULT_RATES: RATES, TANDEM_FAULT_SEED: String((seed * 1_000 + i) >>> 0) }]),
  );
  const pick = <T>(xs: ReadonlyArray<T>) => xs[Math.floor(chaosRandom() * xs.length)]!;
  for (const faultClass of FAULT_CLASSES) {
    const id = pick(ids);
    const env = workerEnv[id]!;
    const entry = `${faultClass}@${3 + Math.floor(chaosRandom() * 20)}`;
    env.TANDEM_FAULT_SCRIPT = env.TANDEM_FAULT_SCRIPT === undefined ? entry : `${env.TANDEM_FAULT_SCRIPT},${entry}`;
  }
  log(`chaos: scripted faults ${ids.filter((id) => workerEnv[id]!.TANDEM_FAULT_SCRIPT).map((id) => `${id}: ${workerEnv[id]!.TANDEM_FAULT_SCRIPT}`).join("; ")}`);

  const cluster: LocalCluster = await startLocalCluster({
    prefill: options.prefill,
    decode: options.decode,
    modelPath,
    env: { TANDEM_HEARTBEAT_MS: "500", TANDEM_LEASE_TTL_MS: "5000", TANDEM_KV_STALL_MS: "2000", TANDEM_LOG_LEVEL: "info" },
    workerEnv,
    onOutput: (id, line) => {
      options.processOutput?.(id, line);
      const faultClass = faultClassLogged(line);
      if (faultClass !== undefined) faultsInjected[faultClass]++;
    },
  });
  const nc = await connect({ servers: cluster.natsUrl, name: "tandem-chaos", maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const subjects = subjectsFor(cluster.cluster);
  const counts = { accepted: 0, completed: 0, failedTyped: 0, lost: 0, duplicateTokens: 0, gapTokens: 0, mismatched: 0, overDeadline: 0, migrations: 0 };
  const failures: Record<string, number> = {};
  let killed = 0;
  let stopped = 0;
  let natsRestarts = 0;
  const startedAt = performance.now();
  const endAt = startedAt + options.minutes * 60_000;

  const record = (prompt: string, outcome: GenerateOutcome) => {
    counts.duplicateTokens += outcome.duplicateChunks;
    counts.gapTokens += outcome.missingChunks;
    if (outcome.totalMs > DEADLINE_MS + 1_000) counts.overDeadline++;
    const final = outcome.final;
    if (final._tag === "GenerateDone") {
      counts.completed++;
      if ((final.attempts ?? 1) > 1) counts.migrations++;
      const want = reference.get(prompt)!;
      if (outcome.tokens.length !== want.length || outcome.tokens.some((t, i) => t !== want[i])) counts.mismatched++;
      return;
    }
    const key = `${final.error.code}/${final.error.reason}`;
    failures[key] = (failures[key] ?? 0) + 1;
    if (final.error.reason === "client_timeout") counts.lost++;
    else counts.failedTyped++;
  };

  const client = async () => {
    while (performance.now() < endAt) {
      const prompt = PROMPTS[Math.floor(loadRandom() * PROMPTS.length)]!;
      counts.accepted++;
      const outcome = await generate(nc, subjects, { prompt, maxTokens: MAX_TOKENS, timeoutMs: DEADLINE_MS });
      record(prompt, outcome);
      // A well-behaved client backs off after a failure instead of hammering a cluster that is short of workers.
      if (outcome.final._tag === "GenerateFailed") await sleep(250);
    }
  };

  const workers = () => cluster.processes.filter((p) => p.role === "prefill" || p.role === "decode");
  const chaos = async () => {
    const tickMs = 1_000;
    for (let second = 1; performance.now() + tickMs < endAt; second++) {
      await sleep(tickMs);
      if (second % options.killEverySeconds === 0) {
        const victim = pick(workers());
        victim.child.kill("SIGKILL");
        killed++;
        log(`chaos t=${second}s: SIGKILL ${victim.id} (pid ${victim.child.pid})`);
      }
      if (second % options.stopEverySeconds === 0) {
        const victim = pick(workers());
        const pauseMs = 2_000 + Math.floor(chaosRandom() * 3_000);
        victim.child.kill("SIGSTOP");
        stopped++;
        log(`chaos t=${second}s: SIGSTOP ${victim.id} for ${pauseMs} ms`);
        setTimeout(() => victim.child.kill("SIGCONT"), pauseMs);
      }
      if (options.natsRestartEverySeconds > 0 && second % options.natsRestartEverySeconds === 0 && cluster.nats !== undefined) {
        log(`chaos t=${second}s: nats-server SIGKILL, back in 1 s`);
        await cluster.nats.restart(1_000);
        natsRestarts++;
      }
      if (second % 10 === 0) log(`chaos t=${second}s: ${JSON.stringify(counts)}`);
    }
  };

  try {
    await Promise.all([chaos(), ...Array.from({ length: options.concurrency }, client)]);
    // Let the last SIGCONT land and heartbeats settle before reading the workers' own counts.
    await sleep(1_500);
    const members = await readMembers(nc, subjects.membersBucket);
    const restarts = (await cluster.restarts()) + members.reduce((n, m) => n + (m.driverRestarts ?? 0), 0);
    const summary = {
      seed,
      minutes: options.minutes,
      ...counts,
      restarts,
      killed,
      stopped,
      natsRestarts,
      faultsInjected,
      quarantined: members.filter((m) => m.health === "quarantined").map((m) => m.id),
      failures,
    };
    const ok = FAULT_CLASSES.every((c) => faultsInjected[c] > 0) && counts.lost === 0 && counts.duplicateTokens === 0 && counts.gapTokens === 0 && counts.mismatched === 0 && counts.overDeadline === 0 &&
      counts.completed > 0;
    return { ...summary, ok };
  } finally {
    await nc.close();
    await cluster.stop();
  }
};

const decodeRecord = decodeMessageResult(MemberRecord);

/** The class of a driver fault a worker logged (actors/worker-driver.ts), if the line is one. */
const faultClassLogged = (line: string): FaultClass | undefined => {
  if (!line.includes('"faultClass"')) return undefined;
  try {
    const parsed = JSON.parse(line) as { faultClass?: string; action?: string };
    return parsed.action !== undefined && (FAULT_CLASSES as ReadonlyArray<string>).includes(parsed.faultClass ?? "")
      ? (parsed.faultClass as FaultClass)
      : undefined;
  } catch {
    return undefined;
  }
};

const readMembers = async (nc: Awaited<ReturnType<typeof connect>>, bucket: string): Promise<MemberRecord[]> => {
  const kv = await nc.jetstream().views.kv(bucket);
  const members: MemberRecord[] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    if (entry === null || entry.operation !== "PUT") continue;
    const decoded = decodeRecord(entry.value);
    if (Result.isSuccess(decoded)) members.push(decoded.success);
  }
  return members;
};
