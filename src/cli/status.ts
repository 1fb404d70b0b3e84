// `tandem status`: what a running cluster looks like right now — workers by pool with their load, KV format,
// runtime, heartbeat age, health (serving / restarting / quarantined), driver faults and restart counts (driver
// restarts from membership, process restarts from the node launchers), the gateways and brokers that answer
// discovery, and the broker's transfer counts.
import { Effect, Result } from "effect";
import { connect, type NatsConnection, RequestStrategy } from "nats";
import {
  BrokerStats,
  BrokerStatsQuery,
  decodeMessage,
  decodeMessageResult,
  encodeMessage,
  MemberRecord,
  NodeStatus,
  NodeStatusQuery,
  subjectsFor,
} from "../protocol/index.ts";
import { MISSED_HEARTBEATS_ALLOWED } from "../transport/membership.ts";

const decodeRecord = decodeMessageResult(MemberRecord);

const readMembers = async (nc: NatsConnection, bucket: string) => {
  const kv = await nc.jetstream().views.kv(bucket);
  const members: MemberRecord[] = [];
  const watch = await kv.watch();
  // The watch first replays every current value; `delta === 0` marks the last of them.
  const status = await kv.status();
  if (status.values === 0) {
    watch.stop();
    return members;
  }
  for await (const entry of watch) {
    if (entry.operation === "PUT") {
      const record = decodeRecord(entry.value);
      if (Result.isSuccess(record)) members.push(record.success);
    }
    if (entry.delta === 0) break;
  }
  watch.stop();
  return members;
};

const decodeNode = decodeMessageResult(NodeStatus);

/** Every node launcher's supervised processes (none when the cluster was not started by `tandem up`). */
const readNodes = async (nc: NatsConnection, subject: string): Promise<NodeStatus[]> => {
  const nodes: NodeStatus[] = [];
  try {
    const replies = await nc.requestMany(subject, encodeMessage(NodeStatusQuery, { _tag: "NodeStatusQuery" }), {
      maxWait: 500,
      strategy: RequestStrategy.Timer,
    });
    for await (const reply of replies) {
      const node = decodeNode(reply.data);
      if (Result.isSuccess(node)) nodes.push(node.success);
    }
  } catch {
    // no node answers
  }
  return nodes;
};

export const clusterStatus = async (nc: NatsConnection, cluster: string) => {
  const subjects = subjectsFor(cluster);
  const now = Date.now();
  const members = await readMembers(nc, subjects.membersBucket);
  const services: Array<{ name: string; id: string; runtime: string; emulated: boolean }> = [];
  try {
    for await (const s of await nc.services.client({ maxWait: 500, strategy: RequestStrategy.Timer }).info()) {
      if (s.metadata?.cluster === cluster) {
        services.push({ name: s.name, id: s.metadata?.id ?? s.id, runtime: s.metadata?.runtime ?? "", emulated: s.metadata?.emulated === "true" });
      }
    }
  } catch {
    // nothing answers discovery
  }
  const broker = await nc
    .request(subjects.broker("stats"), encodeMessage(BrokerStatsQuery, { _tag: "BrokerStatsQuery" }), { timeout: 1_000 })
    .then((reply) => Effect.runPromise(decodeMessage(BrokerStats)(reply.data)))
    .catch(() => undefined);
  const workers = members.map((m) => ({
    id: m.id,
    role: m.role,
    model: m.model,
    pid: m.pid,
    vendor: m.vendor,
    device: m.device,
    emulated: m.emulated,
    kvFormat: m.kvFormat,
    load: `${m.inFlight}/${m.capacity}`,
    heartbeatAgeMs: now - m.heartbeatAt,
    healthy: now - m.heartbeatAt <= m.heartbeatMs * MISSED_HEARTBEATS_ALLOWED,
    health: m.health ?? "serving",
    faults: m.faults ?? {},
    driverRestarts: m.driverRestarts ?? 0,
    ...(m.kvTcp === undefined ? {} : { kvTcp: m.kvTcp }),
  })).sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id));
  return {
    cluster,
    pools: {
      prefill: workers.filter((w) => w.role === "prefill"),
      decode: workers.filter((w) => w.role === "decode"),
    },
    services,
    broker: broker === undefined ? null : {
      activeLeases: broker.activeLeases.length,
      opened: broker.opened,
      completed: broker.completed,
      aborted: broker.aborted,
      expired: broker.expired,
      bytesMoved: broker.bytesMoved,
    },
    quarantined: workers.filter((w) => w.health === "quarantined").map((w) => w.id),
    nodes: await readNodes(nc, subjects.nodeStatus),
  };
};

export const runStatus = async (servers: string, cluster: string, json: boolean): Promise<number> => {
  const nc = await connect({ servers, name: "tandem-status" });
  try {
    const status = await clusterStatus(nc, cluster);
    if (json) {
      process.stdout.write(`${JSON.stringify(status)}\n`);
      return 0;
    }
    const restartsOf = new Map(status.nodes.flatMap((n) => n.processes.map((p) => [p.id, p.restarts] as const)));
    const faultText = (faults: Readonly<Record<string, number>>) =>
      Object.entries(faults).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`).join(", ") || "none";
    const line = (w: (typeof status.pools.prefill)[number]) =>
      `  ${w.id.padEnd(14)} pid ${String(w.pid).padEnd(8)} load ${w.load.padEnd(6)} ${w.healthy ? "healthy" : "STALE"} ` +
      `(${w.heartbeatAgeMs} ms)  ${w.health.toUpperCase() === "SERVING" ? "serving" : w.health.toUpperCase()}  ` +
      `restarts: process ${restartsOf.get(w.id) ?? "?"}, driver ${w.driverRestarts}  faults: ${faultText(w.faults)}  ` +
      `${w.vendor}/${w.device}${w.emulated ? " (emulated)" : ""}  ${w.kvFormat}`;
    process.stdout.write(
      [
        `cluster ${status.cluster} on ${servers}`,
        `prefill pool (${status.pools.prefill.length})`,
        ...status.pools.prefill.map(line),
        `decode pool (${status.pools.decode.length})`,
        ...status.pools.decode.map(line),
        `quarantined: ${status.quarantined.join(", ") || "none"}`,
        `services: ${status.services.map((s) => `${s.name}[${s.id}, ${s.runtime}${s.emulated ? ", emulated" : ""}]`).join(", ") || "none"}`,
        status.broker === null
          ? "kv broker: not answering"
          : `kv broker: ${status.broker.activeLeases} active leases; ${status.broker.completed} completed, ${status.broker.aborted} aborted, ` +
            `${status.broker.expired} expired transfers; ${status.broker.bytesMoved} KV bytes moved`,
      ].join("\n") + "\n",
    );
    return 0;
  } finally {
    await nc.close();
  }
};
