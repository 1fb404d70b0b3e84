// The sender's side of bench/kv-receiver.ts: starts the receiving process and drives it — subscribes it to a
// Tandem NATS transfer, waits for a transfer to be usable there, and runs the raw baselines (raw NATS publish,
// raw loopback socket) against it. The same receiving process serves a channel and its baseline, so both pay
// the same process boundary.
import { type ChildProcess, spawn } from "node:child_process";
import { createConnection } from "node:net";
import { fileURLToPath } from "node:url";
import { connect, JSONCodec, type NatsConnection } from "nats";
import { runtimeCommand } from "../src/cluster/local-cluster.ts";

/** Milliseconds since the epoch with sub-millisecond precision: comparable across processes on one machine. */
export const epochNow = () => performance.timeOrigin + performance.now();

/** A transfer the receiving process holds whole and checked. */
export interface Usable {
  readonly transferId: string;
  readonly usableAt: number;
  readonly bytes: number;
}

export interface KvReceiverProcess {
  /** The port of the receiver's Tandem TCP KV listener. */
  readonly tcpPort: number;
  /** Has the receiver subscribe to a NATS-channel transfer; resolves once its subscription is live. */
  readonly listenNats: (transferId: string, windowBytes: number) => Promise<void>;
  /** Resolves when the receiver holds `transferId` whole and checked. Call before the transfer starts. */
  readonly usable: (transferId: string) => Promise<Usable>;
  /**
   * Raw NATS baseline: publishes `bytes` in chunks on the receiver's subject, waiting for the server (a flush)
   * after every `flushBytes` — the bytes in flight a Tandem receiver's credit window allows; ms until the
   * receiver acknowledged all. The receiver lands each message in a payload-sized buffer (`land`), as any
   * receiver of a cache must, or copies each to one scratch buffer (landing nowhere).
   */
  readonly rawNats: (bytes: Uint8Array, chunkBytes: number, flushBytes: number, land: boolean) => Promise<number>;
  /**
   * Raw TCP baseline: writes `bytes` in chunks to the receiver's plain socket; ms until it acknowledged all. The
   * receiver lands them in a payload-sized buffer (`land`), as any receiver of a cache must, or reads them all
   * into one 4 MiB buffer (landing nowhere).
   */
  readonly rawTcp: (bytes: Uint8Array, chunkBytes: number, land: boolean) => Promise<number>;
  readonly stop: () => Promise<void>;
}

const json = JSONCodec<unknown>();
const RECEIVER = fileURLToPath(new URL("./kv-receiver.ts", import.meta.url));

const firstLine = (child: ChildProcess) =>
  new Promise<string>((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += String(d)));
    child.stdout!.on("data", (d) => {
      out += String(d);
      const end = out.indexOf("\n");
      if (end >= 0) resolve(out.slice(0, end));
    });
    child.once("exit", (code) => reject(new Error(`the KV receiver process exited (${code}) before it was ready: ${err.trim()}`)));
  });

export const startKvReceiver = async (servers: string, benchId: string): Promise<KvReceiverProcess> => {
  const [cmd, args] = runtimeCommand(RECEIVER, [servers, benchId]);
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
  child.stderr!.on("data", (d) => process.stderr.write(String(d)));
  const { tcpPort, rawTcpPort } = JSON.parse(await firstLine(child)) as { tcpPort: number; rawTcpPort: number };
  const nc: NatsConnection = await connect({ servers, name: `${benchId}-sender-control` });
  const waiting = new Map<string, (u: Usable) => void>();
  nc.subscribe(`${benchId}.usable`, {
    callback: (_e, msg) => {
      const u = json.decode(msg.data) as Usable;
      waiting.get(u.transferId)?.(u);
      waiting.delete(u.transferId);
    },
  });
  await nc.flush();

  const rawNats = async (bytes: Uint8Array, chunkBytes: number, flushBytes: number, land: boolean) => {
    const acked = new Promise<void>((resolve) => nc.subscribe(`${benchId}.raw.ack`, { max: 1, callback: () => resolve() }));
    await nc.request(`${benchId}.raw.expect`, new TextEncoder().encode(`${bytes.length} ${land ? "land" : "count"}`), { timeout: 10_000 });
    const started = performance.now();
    const perFlush = Math.max(1, Math.floor(flushBytes / chunkBytes));
    for (let offset = 0, n = 1; offset < bytes.length; offset += chunkBytes, n++) {
      nc.publish(`${benchId}.raw`, bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes)));
      // Let the socket drain as a real sender would, instead of buffering the whole payload in the client.
      if (n % perFlush === 0) await nc.flush();
    }
    await acked;
    return performance.now() - started;
  };

  const rawTcp = (bytes: Uint8Array, chunkBytes: number, land: boolean) =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const socket = createConnection({ host: "127.0.0.1", port: rawTcpPort }, async () => {
        const head = new Uint8Array(9);
        new DataView(head.buffer).setBigUint64(0, BigInt(bytes.length), true);
        head[8] = land ? 1 : 0;
        socket.write(head);
        for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
          if (!socket.write(bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes)))) {
            await new Promise((r) => socket.once("drain", r));
          }
        }
      });
      socket.setNoDelay(true);
      socket.once("data", () => {
        resolve(performance.now() - started);
        socket.destroy();
      });
      socket.once("error", reject);
    });

  return {
    tcpPort,
    listenNats: async (transferId, windowBytes) => {
      await nc.request(`${benchId}.listen`, json.encode({ transferId, windowBytes }), { timeout: 10_000 });
    },
    usable: (transferId) => new Promise<Usable>((resolve) => waiting.set(transferId, resolve)),
    rawNats,
    rawTcp,
    stop: async () => {
      await nc.close();
      child.stdin!.end();
      if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
    },
  };
};
