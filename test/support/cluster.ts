// Test harness: a real local cluster (own nats-server on a free loopback port, real worker processes) and
// a NATS connection that has proven it reached that server.
import { Effect } from "effect";
import { connect, type NatsConnection, RequestStrategy } from "nats";
import { type LocalCluster, type LocalClusterOptions, startLocalCluster } from "../../src/cluster/local-cluster.ts";
import { monolithicTokens } from "../../src/cluster/monolithic.ts";
import { resolveModelPath } from "../../src/engine/model-resolution.ts";
import {
  BrokerStats,
  BrokerStatsQuery,
  decodeMessage,
  encodeMessage,
  type Subjects,
  subjectsFor,
} from "../../src/protocol/index.ts";

export interface TestCluster {
  readonly cluster: LocalCluster;
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly pids: (role: "prefill" | "decode") => ReadonlyArray<number>;
  readonly brokerStats: () => Promise<BrokerStats>;
  /** How many instances of an actor kind (micro-service name, e.g. "tandem-prefill") answer `$SRV.PING` now. */
  readonly answering: (service: string) => Promise<number>;
  readonly stop: () => Promise<void>;
}

export const modelPath = () => resolveModelPath(undefined);

export const startTestCluster = async (options: Omit<LocalClusterOptions, "modelPath">): Promise<TestCluster> => {
  const output: string[] = [];
  const cluster = await startLocalCluster({
    ...options,
    modelPath: modelPath(),
    onOutput: (role, line) => {
      output.push(`[${role}] ${line}`);
      if (process.env.TANDEM_TEST_VERBOSE) process.stderr.write(`[${role}] ${line}\n`);
    },
  });
  const nc = await connect({ servers: cluster.natsUrl, name: "tandem-test", maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const port = Number(new URL(cluster.natsUrl.replace("nats://", "http://")).port);
  if (!nc.info?.server_id || nc.getServer() !== `127.0.0.1:${port}` || !cluster.nats) {
    throw new Error(`test connection did not reach the private nats-server on port ${port}`);
  }
  const subjects = subjectsFor(cluster.cluster);
  return {
    cluster,
    nc,
    subjects,
    pids: (role) => cluster.processes.filter((p) => p.role === role).map((p) => p.child.pid!),
    brokerStats: async () => {
      const reply = await nc.request(subjects.broker("stats"), encodeMessage(BrokerStatsQuery, { _tag: "BrokerStatsQuery" }));
      return Effect.runPromise(decodeMessage(BrokerStats)(reply.data));
    },
    answering: async (service) => {
      let n = 0;
      try {
        for await (const s of await nc.services.client({ maxWait: 300, strategy: RequestStrategy.Timer }).ping(service)) {
          if (s.metadata?.cluster === cluster.cluster) n++;
        }
      } catch {
        // no responders: none answering
      }
      return n;
    },
    stop: async () => {
      await nc.close();
      await cluster.stop();
    },
  };
};

export const referenceTokens = (prompts: ReadonlyArray<string>, maxTokens: number) =>
  Effect.runPromise(monolithicTokens(modelPath(), prompts, maxTokens));

/** Whether a process with this pid exists (signal 0 probes without sending anything). */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The monolithic run's tokens for one prompt: what every served answer must equal. */
export const referenceFor = async (prompt: string, maxTokens: number) => (await referenceTokens([prompt], maxTokens)).get(prompt)!;
