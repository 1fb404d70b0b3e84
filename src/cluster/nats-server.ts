// Starts a private nats-server on a free loopback port (JetStream on, a temp store) and stops it again.
// Used by `tandem up` when NATS_URL is unset and by every integration test.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface NatsServerHandle {
  readonly url: string;
  readonly port: number;
  /** The current server process (a restart starts a new one). */
  readonly pid: () => number;
  /** Kills the server (SIGKILL, as a crash), waits `downMs`, starts it again on the same port and store. */
  readonly restart: (downMs: number) => Promise<void>;
  readonly stop: () => Promise<void>;
}

export interface NatsServerOptions {
  /** Raise max_payload (bytes, at most 8 MiB); the server default is 1 MiB. */
  readonly maxPayload?: number;
  readonly port?: number;
}

export const findNatsServerBinary = (): string => {
  const candidates = [process.env.NATS_SERVER_BIN, "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];
  for (const c of candidates) if (c && existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server");
  throw new Error("nats-server is not installed: run `sudo apt-get install -y nats-server` (or set NATS_URL to an existing server)");
};

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

export const startNatsServer = async (options: NatsServerOptions = {}): Promise<NatsServerHandle> => {
  const binary = findNatsServerBinary();
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "tandem-nats-"));
  const config = [
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: "${join(dir, "js")}" }`,
    ...(options.maxPayload ? [`max_payload: ${Math.min(options.maxPayload, 8 * 1024 * 1024)}`] : []),
  ].join("\n");
  writeFileSync(join(dir, "nats.conf"), config);
  const launch = async () => {
    const child = spawn(binary, ["-c", join(dir, "nats.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (d) => (stderr += String(d)));
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`nats-server did not start on port ${port}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return child;
  };
  let child: ChildProcess;
  try {
    child = await launch();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: () => child.pid ?? 0,
    restart: async (downMs) => {
      child.kill("SIGKILL");
      await exited(child);
      await new Promise((r) => setTimeout(r, downMs));
      child = await launch();
    },
    stop: async () => {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exited(child);
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
