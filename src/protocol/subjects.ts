// The only module that builds NATS subject strings. Every subject is versioned (`tandem.v1`) and scoped to a
// cluster name so several clusters can share one NATS account without crosstalk.

const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Rejects tokens that would change a subject's shape (dots, wildcards, whitespace). */
export const assertSubjectToken = (kind: string, token: string): string => {
  if (!SUBJECT_TOKEN.test(token)) {
    throw new Error(`${kind} "${token}" is not a valid subject token: use letters, digits, '-' and '_' only`);
  }
  return token;
};

export type WorkerVerb = "prefill" | "decode" | "kv-expect" | "cancel";
export type BrokerVerb = "open" | "complete" | "abort" | "stats";

export interface Subjects {
  readonly cluster: string;
  /** Entry point for clients; gateways listen in the queue group {@link GATEWAY_QUEUE}. */
  readonly generate: string;
  /** Direct subject of one worker. */
  readonly worker: (workerId: string, verb: WorkerVerb) => string;
  readonly broker: (verb: BrokerVerb) => string;
  /** Data plane of one KV transfer: offer and chunks flow sender → receiver. */
  readonly kvData: (transferId: string) => string;
  /** Credits flow receiver → sender. */
  readonly kvCredit: (transferId: string) => string;
  /** Asked of every node launcher (not a queue group: each answers for its own processes). */
  readonly nodeStatus: string;
  /**
   * Broadcasts: `transfer` (the broker, a transfer ended), `alert` (a worker quarantined itself), `prefix` (a prefill
   * worker started or finished a prompt, for the prefix index).
   */
  readonly events: (kind: "transfer" | "alert" | "prefix") => string;
  /** NATS KV bucket holding membership records (one key per worker). */
  readonly membersBucket: string;
  /** NATS KV bucket holding KV-transfer leases (one key per transfer). */
  readonly leasesBucket: string;
  /** JetStream Object Store bucket holding prefixes evicted by prefill engines (the spill tier). */
  readonly prefixSpillBucket: string;
}

export const GATEWAY_QUEUE = "tandem-gateway";

export const subjectsFor = (cluster: string): Subjects => {
  assertSubjectToken("cluster name", cluster);
  const root = `tandem.v1.${cluster}`;
  return {
    cluster,
    generate: `${root}.generate`,
    worker: (workerId, verb) => `${root}.worker.${assertSubjectToken("worker id", workerId)}.${verb}`,
    broker: (verb) => `${root}.kvbroker.${verb}`,
    kvData: (transferId) => `${root}.kv.${assertSubjectToken("transfer id", transferId)}.data`,
    kvCredit: (transferId) => `${root}.kv.${assertSubjectToken("transfer id", transferId)}.credit`,
    events: (kind) => `${root}.events.${kind}`,
    nodeStatus: `${root}.node.status`,
    membersBucket: `tandem_${cluster}_members`,
    leasesBucket: `tandem_${cluster}_leases`,
    prefixSpillBucket: `tandem_${cluster}_prefixes`,
  };
};
