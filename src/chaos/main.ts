// `npm run chaos -- --seed <n> --minutes <m>`: runs the chaos harness and prints, as its LAST line, one JSON
// object with the run's counts. Exits 0 when nothing was lost, duplicated, left with a gap, answered wrong or
// answered after its deadline; 1 otherwise; 2 on a usage error.
import { appendFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { CHAOS_DEFAULTS, runChaos } from "./chaos-run.ts";
import { positiveInt, UsageError } from "../cli/usage.ts";

const HELP = `usage: npm run chaos -- [--seed <n>] [--minutes <m>] [--prefill <n>] [--decode <n>] [--concurrency <n>]
                       [--nats-restart-every <s>]

Starts a local cluster (${CHAOS_DEFAULTS.prefill} prefill + ${CHAOS_DEFAULTS.decode} decode workers by default) under steady load; SIGKILLs a
random worker every ${CHAOS_DEFAULTS.killEverySeconds} s, SIGSTOPs one for 2–5 s every ${CHAOS_DEFAULTS.stopEverySeconds} s, and injects every driver fault class.
Every answer is checked against the monolithic run. The seed (random unless given) is printed first; the
same seed replays the same kills, stops, fault sequences and prompts. The last line is the JSON summary.
  --minutes   run length, fractions allowed (default ${CHAOS_DEFAULTS.minutes})
  --nats-restart-every   also SIGKILL nats-server this often (seconds) and start it again 1 s later (default: never)`;

const parse = (argv: ReadonlyArray<string>) => {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return undefined;
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}"`);
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`${arg} needs a value`);
    flags.set(arg.slice(2), value);
    i++;
  }
  for (const name of flags.keys()) {
    if (!["seed", "minutes", "prefill", "decode", "concurrency", "nats-restart-every"].includes(name)) throw new UsageError(`unknown flag --${name}`);
  }
  const minutes = Number(flags.get("minutes") ?? CHAOS_DEFAULTS.minutes);
  if (!Number.isFinite(minutes) || minutes <= 0) throw new UsageError(`--minutes must be a positive number, got "${flags.get("minutes")}"`);
  const seedRaw = flags.get("seed");
  const seed = seedRaw === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(seedRaw);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${seedRaw}"`);
  const int = (name: string, fallback: number) => (flags.has(name) ? positiveInt(name, flags.get(name)!) : fallback);
  return {
    seed,
    minutes,
    prefill: int("prefill", CHAOS_DEFAULTS.prefill),
    decode: int("decode", CHAOS_DEFAULTS.decode),
    concurrency: int("concurrency", CHAOS_DEFAULTS.concurrency),
    natsRestartEverySeconds: int("nats-restart-every", CHAOS_DEFAULTS.natsRestartEverySeconds),
  };
};

const main = async () => {
  let options;
  try {
    options = parse(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`chaos: ${error.message}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (options === undefined) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const logFile = join(tmpdir(), `tandem-chaos-${options.seed}.log`);
  writeFileSync(logFile, "");
  process.stderr.write(`chaos: seed ${options.seed}; process logs in ${logFile}\n`);
  const summary = await runChaos({
    ...options,
    killEverySeconds: CHAOS_DEFAULTS.killEverySeconds,
    stopEverySeconds: CHAOS_DEFAULTS.stopEverySeconds,
    log: (line) => process.stderr.write(`${line}\n`),
    processOutput: (id, line) => appendFileSync(logFile, `[${id}] ${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(summary.ok ? 0 : 1);
};

void main();
