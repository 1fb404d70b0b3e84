// A local cluster as real OS processes: a private nats-server (unless NATS_URL is given), the gateway, the
// KV broker, and pools of prefill and decode workers. Waits until every worker is in live membership and
// the gateway and broker answer `$SRV.PING`; `stop()` terminates everything it started.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection, RequestStrategy } from "nats";
import { hostname } from "node:os";
import { encodeMessage, NodeStatus, subjectsFor } from "../protocol/index.ts";
import { type NatsServerHandle, startNatsServer } from "./nats-server.ts";
import { resolveModelPath } from "../engine/model-resolution.ts";
import { findAccelerator, loadAcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { findModel } from "../hardware/model-catalog.ts";
import type { Role } from "../cli/roles.ts";
import type { SupervisorStatus } from "../supervision/index.ts";
import { type ClusterProcess, type NodeSupervision, type ProcessSpec, superviseProcesses } from "./node-supervisor.ts";

export interface LocalClusterOptions {
  readonly prefill: number;
  readonly decode: number;
  readonly cluster?: string;
  readonly natsUrl?: string;
  readonly modelPath?: string;
  /** Extra environment for every process, e.g. TANDEM_KV_CHUNK_BYTES. */
  readonly env?: Record<string, string>;
  /** Extra environment for prefill workers only (e.g. another KV layout). */
  readonly prefillEnv?: Record<string, string>;
  /** Extra environment for decode workers only (fault injection in tests, another KV layout). */
  readonly decodeEnv?: Record<string, string>;
  /** Extra environment for one process by id (e.g. `decode-0`), applied last. */
  readonly workerEnv?: Readonly<Record<string, Record<string, string>>>;
  /** Where child process output goes; default: discarded unless TANDEM_LOG_LEVEL is set. */
  readonly onOutput?: (role: string, line: string) => void;
  readonly readyTimeoutMs?: number;
  /** Start one monolithic server (prefill and decode in one process) instead of the disaggregated actors. */
  readonly monolithic?: boolean;
  /** Start a process again when it exits (default true); false leaves a dead process dead. */
  readonly restartWorkers?: boolean;
  /** The node's supervision tree gave up (a pool crash-looped); default: a line on stderr. */
  readonly onGiveUp?: (message: string) => void;
  /** A process exited on its own (the node restarts it when `restartWorkers` is on). */
  readonly onProcessExit?: (id: string, code: number | null, signal: string | null) => void;
  /**
   * Emulated vendor pools (src/engine/emulated/): the accelerator each pool pretends to be (catalog id) and the
   * model its timing follows; handed to the workers as TANDEM_EMULATE_CHIP and TANDEM_EMULATE_MODEL.
   */
  readonly emulate?: { readonly prefill?: string; readonly decode?: string; readonly model?: string };
}

/** The environment that makes a worker an emulated `chip`, after checking the ids (an unknown one lists the valid ones). */
const emulationEnv = (chip: string | undefined, model: string | undefined): Record<string, string> => {
  if (chip === undefined) return {};
  findAccelerator(loadAcceleratorCatalog(), chip);
  if (model !== undefined) findModel(model);
  return { TANDEM_EMULATE_CHIP: chip, ...(model === undefined ? {} : { TANDEM_EMULATE_MODEL: model }) };
};

export type { ClusterProcess } from "./node-supervisor.ts";

export interface LocalCluster {
  readonly natsUrl: string;
  readonly cluster: string;
  /** Current incarnation of each process (a restarted worker has a new child). */
  readonly processes: ReadonlyArray<ClusterProcess>;
  readonly nats: NatsServerHandle | undefined;
  /** Worker processes restarted by the node's supervision tree so far. */
  readonly restarts: () => Promise<number>;
  readonly supervisionStatus: () => Promise<SupervisorStatus>;
  readonly stop: () => Promise<void>;
}

const MAIN = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
const TSX_LOADER = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href;

/** The command line that runs a TypeScript `script` under this runtime: Deno, or Node with tsx's loader. */
export const runtimeCommand = (script: string, args: ReadonlyArray<string>): [string, string[]] => {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), ["run", "-A", script, ...args]];
  return [process.execPath, ["--import", TSX_LOADER, script, ...args]];
};

/** The command line that runs this program's CLI under the same runtime. */
export const selfCommand = (args: ReadonlyArray<string>) => runtimeCommand(MAIN, args);

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

export const stopProcess = async (child: ChildProcess, graceMs = 5_000) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited(child);
  clearTimeout(timer);
};

/** Ready when every actor answers `$SRV.PING`; workers join membership before they start serving. */
const waitUntilReady = async (nc: NatsConnection, cluster: string, want: Record<string, number>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  let seen: Record<string, number> = {};
  while (Date.now() < deadline) {
    seen = {};
    // Until the first service exists the ping fails with "no responders"; that just means "not yet".
    try {
      for await (const s of await nc.services.client({ maxWait: 500, strategy: RequestStrategy.Timer }).ping()) {
        if (s.metadata?.cluster === cluster) seen[s.name] = (seen[s.name] ?? 0) + 1;
      }
    } catch {
      // no responders yet
    }
    if (Object.entries(want).every(([name, n]) => (seen[name] ?? 0) >= n)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cluster not ready within ${timeoutMs} ms: want ${JSON.stringify(want)}, answering ${JSON.stringify(seen)}`);
};

/** Answers `node.status` with this launcher's supervised processes, for `tandem status`. */
const answerNodeStatus = (nc: NatsConnection, subject: string, supervision: NodeSupervision) =>
  nc.subscribe(subject, {
    callback: (_, msg) =>
      void supervision.processStatus().then((processes) =>
        msg.respond(encodeMessage(NodeStatus, { _tag: "NodeStatus", node: `${hostname()}:${process.pid}`, processes }))
      ),
  });

export const startLocalCluster = async (options: LocalClusterOptions): Promise<LocalCluster> => {
  const cluster = options.cluster ?? "local";
  // Resolved here, once, so a missing model or an unknown chip fails now with its explanation instead of in six children.
  const modelPath = resolveModelPath(options.modelPath);
  const prefillEnv = { ...emulationEnv(options.emulate?.prefill, options.emulate?.model), ...options.prefillEnv };
  const decodeEnv = { ...emulationEnv(options.emulate?.decode, options.emulate?.model), ...options.decodeEnv };
  const nats = options.natsUrl ? undefined : await startNatsServer();
  const natsUrl = options.natsUrl ?? nats!.url;
  const specs: ProcessSpec[] = [];
  const recentOutput: string[] = [];
  const start = (role: Role, id: string, roleEnv: Record<string, string> = {}) => {
    const env = { ...roleEnv, ...options.workerEnv?.[id] };
    specs.push({ role, id, spawn: () => spawnRole(role, id, env) });
  };
  const spawnRole = (role: Role, id: string, extraEnv: Record<string, string>) => {
    const [cmd, args] = selfCommand([role, "--id", id, "--model", modelPath]);
    const child = spawn(cmd, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        ...options.env,
        ...extraEnv,
        NATS_URL: natsUrl,
        TANDEM_CLUSTER: cluster,
        TANDEM_PARENT_PID: String(process.pid),
      },
    });
    const forward = (data: unknown) => {
      for (const line of String(data).split("\n")) {
        if (!line.trim()) continue;
        recentOutput.push(`[${id}] ${line}`);
        if (recentOutput.length > 20) recentOutput.shift();
        options.onOutput?.(id, line);
      }
    };
    child.stdout?.on("data", forward);
    child.stderr?.on("data", forward);
    return child;
  };
  let supervision: NodeSupervision | undefined;
  let launcher: NatsConnection | undefined;
  const stop = async () => {
    await launcher?.close();
    await supervision?.stop();
    await nats?.stop();
  };
  try {
    if (options.monolithic) start("monolithic", "monolithic-0");
    else {
      start("broker", "broker-0");
      start("gateway", "gateway-0");
      for (let i = 0; i < options.prefill; i++) start("prefill", `prefill-${i}`, prefillEnv);
      for (let i = 0; i < options.decode; i++) start("decode", `decode-${i}`, decodeEnv);
    }
    supervision = superviseProcesses(specs, {
      restart: options.restartWorkers ?? true,
      stopProcess: (child) => stopProcess(child),
      onGiveUp: options.onGiveUp ?? ((message) => process.stderr.write(`tandem: the node's supervision tree gave up: ${message}\n`)),
      ...(options.onProcessExit === undefined ? {} : { onExit: options.onProcessExit }),
    });
    const want: Record<string, number> = options.monolithic
      ? { "tandem-monolithic": 1 }
      : { "tandem-prefill": options.prefill, "tandem-decode": options.decode, "tandem-gateway": 1, "tandem-kv-broker": 1 };
    launcher = await connect({ servers: natsUrl, name: "tandem-launcher", maxReconnectAttempts: -1 });
    await waitUntilReady(launcher, cluster, want, options.readyTimeoutMs ?? 60_000);
    answerNodeStatus(launcher, subjectsFor(cluster).nodeStatus, supervision);
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nlast process output:\n${recentOutput.join("\n")}`);
  }
  const supervised = supervision!;
  return {
    natsUrl,
    cluster,
    get processes() {
      return supervised.processes();
    },
    nats,
    stop,
    restarts: supervised.restarts,
    supervisionStatus: supervised.status,
  };
};
