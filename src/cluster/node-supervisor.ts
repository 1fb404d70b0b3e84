// The node's supervision tree over a local cluster's OS processes: node → {broker, gateway, prefill pool,
// decode pool} → worker processes (each worker process supervises its own engine driver). A process that exits
// is started again with the same id by its pool, with backoff; a pool that restarts too often escalates to
// the node, and a node that gives up calls `onGiveUp` (the CLI exits non-zero so an orchestrator takes over).
import type { ChildProcess } from "node:child_process";
import { Data, Effect, Exit, Fiber } from "effect";
import { child, type ChildSpec, type ChildStatus, makeSupervisor, type Supervisor, type SupervisorStatus } from "../supervision/index.ts";
import type { SupervisedProcess } from "../protocol/index.ts";
import type { Role } from "../cli/roles.ts";

export interface ClusterProcess {
  readonly role: Role;
  readonly id: string;
  /** The current incarnation: replaced when the pool restarts the process. */
  readonly child: ChildProcess;
}

export interface ProcessSpec {
  readonly role: Role;
  readonly id: string;
  readonly spawn: () => ChildProcess;
}

export class ProcessExited extends Data.TaggedError("ProcessExited")<{
  readonly id: string;
  readonly code: number | null;
  readonly signal: string | null;
}> {
  override get message() {
    return `process ${this.id} exited (${this.signal ?? `code ${this.code}`})`;
  }
}

export interface NodeSupervisorOptions {
  /** Start a process again when it exits (default). Off, an exited process stays gone (for tests that need that). */
  readonly restart: boolean;
  /** Stops a process for good (graceful first); used when the node shuts down. */
  readonly stopProcess: (child: ChildProcess) => Promise<void>;
  /** The whole tree gave up (a pool kept failing past its intensity). */
  readonly onGiveUp: (message: string) => void;
  /** A supervised process exited (it is restarted unless the tree is stopping or restarts are off). */
  readonly onExit?: (id: string, code: number | null, signal: string | null) => void;
}

export interface NodeSupervision {
  /** Current incarnation of every process, in start order. */
  readonly processes: () => ReadonlyArray<ClusterProcess>;
  readonly status: () => Promise<SupervisorStatus>;
  /** Every supervised process with its state and restart count (the tree flattened). */
  readonly processStatus: () => Promise<ReadonlyArray<SupervisedProcess>>;
  /** Restarts of worker processes so far, over the whole tree. */
  readonly restarts: () => Promise<number>;
  readonly stop: () => Promise<void>;
}

/** A pool tolerates a crash every few seconds (the chaos harness kills one every 10 s) but not a crash loop. */
const POOL_INTENSITY = { maxRestarts: 10, period: "30 seconds" } as const;
const NODE_INTENSITY = { maxRestarts: 3, period: "60 seconds" } as const;

const leaves = (status: SupervisorStatus): ReadonlyArray<ChildStatus> =>
  status.children.flatMap((c) => (c.supervisor === undefined ? [c] : leaves(c.supervisor)));

const totalRestarts = (status: SupervisorStatus): number =>
  status.children.reduce((sum, c) => sum + c.restarts + (c.supervisor === undefined ? 0 : totalRestarts(c.supervisor)), 0);

export const superviseProcesses = (specs: ReadonlyArray<ProcessSpec>, options: NodeSupervisorOptions): NodeSupervision => {
  const current = new Map<string, ClusterProcess>();

  /** One process as a supervised child: runs until the process exits (a failure), stops it when interrupted. */
  const processChild = (spec: ProcessSpec): ChildSpec =>
    child(
      spec.id,
      Effect.acquireUseRelease(
        Effect.sync(() => {
          const proc = spec.spawn();
          current.set(spec.id, { role: spec.role, id: spec.id, child: proc });
          return proc;
        }),
        (proc) =>
          Effect.callback<never, ProcessExited>((resume) => {
            const exited = (code: number | null, signal: string | null) => {
              options.onExit?.(spec.id, code, signal);
              resume(Effect.fail(new ProcessExited({ id: spec.id, code, signal })));
            };
            if (proc.exitCode !== null || proc.signalCode !== null) return exited(proc.exitCode, proc.signalCode);
            proc.once("exit", exited);
            return Effect.sync(() => void proc.off("exit", exited));
          }),
        (proc) => Effect.promise(() => options.stopProcess(proc)),
      ),
      options.restart ? "permanent" : "temporary",
    );

  const pool = (role: Role): Supervisor<never> | undefined => {
    const members = specs.filter((s) => s.role === role);
    if (members.length === 0) return undefined;
    return makeSupervisor({ name: `${role}-pool`, strategy: "one_for_one", intensity: POOL_INTENSITY, children: members.map(processChild) });
  };
  const pools = [pool("prefill"), pool("decode")].filter((p): p is Supervisor<never> => p !== undefined);
  const node = makeSupervisor({
    name: "node",
    strategy: "one_for_one",
    intensity: NODE_INTENSITY,
    children: [
      ...specs.filter((s) => s.role !== "prefill" && s.role !== "decode").map(processChild),
      ...pools.map((p) => p.asChild(options.restart ? "permanent" : "temporary")),
    ],
  });

  const fiber = Effect.runFork(node.run);
  fiber.addObserver((exit) => {
    if (Exit.isFailure(exit) && !Exit.hasInterrupts(exit)) {
      const failure = Exit.findErrorOption(exit);
      options.onGiveUp(failure._tag === "Some" ? String((failure.value as { message?: string }).message ?? failure.value) : "node supervisor failed");
    }
  });

  return {
    processes: () => specs.map((s) => current.get(s.id)).filter((p): p is ClusterProcess => p !== undefined),
    status: () => Effect.runPromise(node.status),
    restarts: () => Effect.runPromise(node.status.pipe(Effect.map(totalRestarts))),
    processStatus: () =>
      Effect.runPromise(node.status).then((status) =>
        leaves(status).map((c) => ({
          id: c.id,
          role: current.get(c.id)?.role ?? "",
          pid: current.get(c.id)?.child.pid ?? 0,
          state: c.state,
          restarts: c.restarts,
          ...(c.lastFailure === undefined ? {} : { lastFailure: c.lastFailure }),
        }))
      ),
    stop: () => Effect.runPromise(Fiber.interrupt(fiber)).then(() => undefined),
  };
};
