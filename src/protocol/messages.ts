// Every message Tandem puts on the wire, as versioned Effect Schemas. Each message carries `_tag` and `v`;
// decoders accept every version in SUPPORTED_VERSIONS, encoders write CURRENT_VERSION. Fields are only
// ever added, as optional.
import { Schema } from "effect";
import { ErrorBody } from "./errors.ts";

export const CURRENT_VERSION = 1;
export const SUPPORTED_VERSIONS: ReadonlyArray<number> = [1];

const V = Schema.Literal(1);
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));
const TokenId = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));

// ---- client-facing: the generate call -------------------------------------------------------------

export const GenerateRequest = Schema.TaggedStruct("GenerateRequest", {
  v: V,
  prompt: Schema.String,
  maxTokens: Schema.optionalKey(Schema.Int),
  model: Schema.optionalKey(Schema.String),
  timeoutMs: Schema.optionalKey(Schema.Int),
  requestId: Schema.optionalKey(Schema.String),
  /**
   * Set by a client asking again after a reconnect (same requestId, same reply inbox): the gateway re-sends what
   * it has sent for that request so far instead of running it again; a request it does not know runs as new.
   */
  resume: Schema.optionalKey(Schema.Boolean),
});
export type GenerateRequest = typeof GenerateRequest.Type;

export const TokenChunk = Schema.TaggedStruct("TokenChunk", {
  v: V,
  requestId: Schema.String,
  seq: Count,
  tokens: Schema.Array(TokenId),
  text: Schema.String,
});
export type TokenChunk = typeof TokenChunk.Type;

export const FinishReason = Schema.Literals(["stop", "length"]);
export type FinishReason = typeof FinishReason.Type;

export const Usage = Schema.Struct({ promptTokens: Count, completionTokens: Count });

export const Timings = Schema.Struct({
  ttftMs: Schema.Number,
  prefillMs: Schema.Number,
  transferMs: Schema.Number,
  decodeMs: Schema.Number,
  totalMs: Schema.Number,
  tpotMs: Schema.Number,
});
export type Timings = typeof Timings.Type;

export const Route = Schema.Struct({
  prefillWorker: Schema.String,
  prefillPid: Count,
  decodeWorker: Schema.String,
  decodePid: Count,
  transferId: Schema.String,
  kvBytes: Count,
});
export type Route = typeof Route.Type;

export const GenerateDone = Schema.TaggedStruct("GenerateDone", {
  v: V,
  requestId: Schema.String,
  finishReason: FinishReason,
  chunks: Count,
  usage: Usage,
  timings: Timings,
  /** The route of the attempt that finished the answer. */
  route: Route,
  /** Attempts the request took (1 unless the gateway recovered it from a failure); absent from servers without recovery. */
  attempts: Schema.optionalKey(Count),
});
export type GenerateDone = typeof GenerateDone.Type;

export const GenerateFailed = Schema.TaggedStruct("GenerateFailed", {
  v: V,
  requestId: Schema.String,
  error: ErrorBody,
});
export type GenerateFailed = typeof GenerateFailed.Type;

export const GenerateReply = Schema.Union([TokenChunk, GenerateDone, GenerateFailed]);
export type GenerateReply = typeof GenerateReply.Type;

// ---- replies to internal asks ------------------------------------------------------------------------

/** The error reply to any internal ask. */
export const Failure = Schema.TaggedStruct("Failure", { v: V, error: ErrorBody });
export type Failure = typeof Failure.Type;

export const Ack = Schema.TaggedStruct("Ack", { v: V });

// ---- prefill worker ---------------------------------------------------------------------------------

/** Identifies one attempt at one request; prefill, broker and decode all key their state by it. */
export const requestKey = (requestId: string, attempt: number) => `${requestId}#${attempt}`;

export const PrefillCommand = Schema.TaggedStruct("PrefillCommand", {
  v: V,
  requestId: Schema.String,
  attempt: Count,
  prompt: Schema.String,
  maxTokens: Count,
  /** The request actor's inbox for this attempt: prefill publishes the first TokenChunk (seq 0) there before replying. */
  replyTo: Schema.optionalKey(Schema.String),
  /** The decode worker that will receive this request's KV; prefill opens the transfer to it at the broker. */
  decodeWorker: Schema.String,
  leaseTtlMs: Count,
  /** The decode worker's direct TCP KV listener ("host:port"), when it has one; used for large caches. */
  decodeKvTcp: Schema.optionalKey(Schema.String),
});
export type PrefillCommand = typeof PrefillCommand.Type;

export const PrefillDone = Schema.TaggedStruct("PrefillDone", {
  v: V,
  firstToken: TokenId,
  firstText: Schema.String,
  promptTokens: Count,
  /**
   * `eos`: the first token is end-of-sequence (not part of the answer); `length`: max_tokens is reached with
   * the first token. In both cases no KV is sent and no decode follows. `continue`: decode follows.
   */
  next: Schema.Literals(["eos", "length", "continue"]),
  prefillMs: Schema.Number,
  pid: Count,
});
export type PrefillDone = typeof PrefillDone.Type;

// ---- decode worker ----------------------------------------------------------------------------------

export const DecodeCommand = Schema.TaggedStruct("DecodeCommand", {
  v: V,
  requestId: Schema.String,
  attempt: Count,
  /** The token prefill produced; decode feeds it first. */
  firstToken: TokenId,
  /** How many more tokens decode may produce. */
  maxNewTokens: Count,
  /**
   * Tokens of the prompt whose KV comes with the request: the decode worker reserves prompt + first token +
   * maxNewTokens in its batch (without it, a whole sequence's context).
   */
  promptTokens: Schema.optionalKey(Count),
  /** Where decode publishes its TokenChunks: the request actor's inbox for this attempt (it relays them on). */
  replyTo: Schema.String,
  /** Sequence number of the first chunk decode publishes. */
  startSeq: Count,
});
export type DecodeCommand = typeof DecodeCommand.Type;

export const DecodeDone = Schema.TaggedStruct("DecodeDone", {
  v: V,
  tokens: Count,
  finishReason: FinishReason,
  transferId: Schema.String,
  /** Size of the KV cache this worker received and imported. */
  kvBytes: Count,
  /** Time from the command's arrival until the KV cache was imported. */
  waitKvMs: Schema.Number,
  decodeMs: Schema.Number,
  pid: Count,
});
export type DecodeDone = typeof DecodeDone.Type;

/** Drop everything held for this request attempt: a pending transfer, a running decode. No reply. */
export const CancelCommand = Schema.TaggedStruct("CancelCommand", { v: V, requestId: Schema.String, attempt: Count });

// ---- KV broker and the transfer data plane ----------------------------------------------------------

export const TransferOpen = Schema.TaggedStruct("TransferOpen", {
  v: V,
  requestId: Schema.String,
  attempt: Count,
  sender: Schema.String,
  receiver: Schema.String,
  ttlMs: Count,
});
export type TransferOpen = typeof TransferOpen.Type;

export const TransferOpened = Schema.TaggedStruct("TransferOpened", {
  v: V,
  transferId: Schema.String,
  chunkBytes: Count,
  leaseExpiresAt: Schema.Number,
});
export type TransferOpened = typeof TransferOpened.Type;

/** Broker → receiver (no reply): get ready for a transfer — subscribe to its data subject and grant credit. */
export const KvExpect = Schema.TaggedStruct("KvExpect", {
  v: V,
  transferId: Schema.String,
  requestId: Schema.String,
  attempt: Count,
  sender: Schema.String,
  ttlMs: Count,
});
export type KvExpect = typeof KvExpect.Type;

/**
 * Sender → receiver, first message on the data subject: what is coming. The payload is a sequence of layers
 * laid end to end, each chunked on its own, so a layer can be sent as soon as it exists and used as soon as
 * it has arrived; a whole blob is one layer.
 */
export const KvOffer = Schema.TaggedStruct("KvOffer", {
  v: V,
  transferId: Schema.String,
  totalBytes: Count,
  /** Chunks over all layers: Σ max(1, ⌈layer bytes / chunkBytes⌉). */
  chunks: Count,
  chunkBytes: Count,
  /**
   * 0. (Before layered transfers: a checksum over every chunk's checksum, which a streaming sender cannot know
   * when it offers; each layer's manifest now travels on its last chunk, see `KvChunk.layerChecksum`.)
   */
  checksum: Count,
  format: Schema.String,
  /** Byte size of each layer, in order (they sum to totalBytes); absent: one layer of totalBytes. */
  layers: Schema.optionalKey(Schema.Array(Count)),
});
export type KvOffer = typeof KvOffer.Type;

export const KvChunk = Schema.TaggedStruct("KvChunk", {
  v: V,
  transferId: Schema.String,
  index: Count,
  bytes: Schema.Uint8Array,
  /** Checksum of `bytes` (`kvChecksum`, src/kv/checksum/kv-hash.ts). */
  checksum: Count,
  /** On the last chunk of each layer only: the checksum over that layer's chunk checksums (little-endian u32s, in order). */
  layerChecksum: Schema.optionalKey(Count),
});
export type KvChunk = typeof KvChunk.Type;

/**
 * Receiver → sender: the sender may send chunks with index < `upTo`. Cumulative, so a repeated or lost
 * credit does no harm. `upTo: 0`, repeated until the offer arrives, means "listening, no offer yet".
 */
export const KvCredit = Schema.TaggedStruct("KvCredit", {
  v: V,
  transferId: Schema.String,
  upTo: Count,
  /** Every chunk with index < `received` has arrived and passed its check: the sender may forget them. */
  received: Schema.optionalKey(Count),
});
export type KvCredit = typeof KvCredit.Type;

/** Receiver → sender, on the credit subject: send these chunks again (they went missing or failed their checksum). */
export const KvResend = Schema.TaggedStruct("KvResend", { v: V, transferId: Schema.String, chunks: Schema.Array(Count) });
export type KvResend = typeof KvResend.Type;

/** Everything a receiver says on a transfer's credit subject. */
export const KvReceiverMessage = Schema.Union([KvCredit, KvResend]);

export const KvDataMessage = Schema.Union([KvOffer, KvChunk]);

export const TransferComplete = Schema.TaggedStruct("TransferComplete", {
  v: V,
  transferId: Schema.String,
  bytes: Count,
});
/** Ends the transfer of a request attempt, if there is one (anyone involved may send it). */
export const TransferAbort = Schema.TaggedStruct("TransferAbort", {
  v: V,
  requestId: Schema.String,
  attempt: Count,
  reason: Schema.String,
});
export type TransferAbort = typeof TransferAbort.Type;

/** The abort reason a decode worker gives when it cannot take another transfer; callers see `Overloaded`. */
export const RECEIVER_OVERLOADED = "receiver_overloaded";

export const TransferState = Schema.Literals(["completed", "aborted", "expired"]);
export type TransferState = typeof TransferState.Type;

/** Published by the broker on events.transfer whenever a transfer ends, whichever way. */
export const TransferEvent = Schema.TaggedStruct("TransferEvent", {
  v: V,
  transferId: Schema.String,
  requestId: Schema.String,
  attempt: Count,
  state: TransferState,
  reason: Schema.String,
  bytes: Count,
});
export type TransferEvent = typeof TransferEvent.Type;

/** Published by a worker on events.alert when it quarantines itself: an operator has to look at the device. */
export const AlertEvent = Schema.TaggedStruct("AlertEvent", {
  v: V,
  workerId: Schema.String,
  vendor: Schema.String,
  code: Schema.String,
  faultClass: Schema.String,
  reason: Schema.String,
});
export type AlertEvent = typeof AlertEvent.Type;

/**
 * Published by a prefill worker on events.prefix when it starts a prompt and when the prompt's sequence is free
 * again; the gateways' prefix index follows them (src/kv/prefix-index.ts).
 */
export const PrefixEvent = Schema.TaggedStruct("PrefixEvent", {
  v: V,
  workerId: Schema.String,
  /** The worker's process id: a new one means a restarted worker with an empty cache. */
  pid: Count,
  /** Sequences the worker's engine has (slots of the index). */
  capacity: Count,
  /** requestKey(requestId, attempt) of the prompt. */
  request: Schema.String,
  phase: Schema.Literals(["started", "finished"]),
  /** On `started`: the prompt's text block hash chain (src/kv/prompt-prefix.ts). */
  chain: Schema.optionalKey(Schema.Array(Count)),
});
export type PrefixEvent = typeof PrefixEvent.Type;

export const BrokerStatsQuery = Schema.TaggedStruct("BrokerStatsQuery", { v: V });

/** Asked of every node (a `tandem up` launcher) on `node.status`; each answers with its supervised processes. */
export const NodeStatusQuery = Schema.TaggedStruct("NodeStatusQuery", { v: V });

export const SupervisedProcess = Schema.Struct({
  id: Schema.String,
  role: Schema.String,
  pid: Count,
  state: Schema.Literals(["running", "restarting", "stopped"]),
  /** Times the node started this process again after it exited. */
  restarts: Count,
  lastFailure: Schema.optionalKey(Schema.String),
});
export type SupervisedProcess = typeof SupervisedProcess.Type;

export const NodeStatus = Schema.TaggedStruct("NodeStatus", {
  v: V,
  /** `<hostname>:<pid>` of the launcher. */
  node: Schema.String,
  processes: Schema.Array(SupervisedProcess),
});
export type NodeStatus = typeof NodeStatus.Type;

export const LeaseRecord = Schema.Struct({
  transferId: Schema.String,
  requestId: Schema.String,
  attempt: Count,
  sender: Schema.String,
  receiver: Schema.String,
  openedAt: Schema.Number,
  expiresAt: Schema.Number,
});
export type LeaseRecord = typeof LeaseRecord.Type;

export const BrokerStats = Schema.TaggedStruct("BrokerStats", {
  v: V,
  activeLeases: Schema.Array(LeaseRecord),
  opened: Count,
  completed: Count,
  aborted: Count,
  expired: Count,
  bytesMoved: Count,
});
export type BrokerStats = typeof BrokerStats.Type;

// ---- membership -------------------------------------------------------------------------------------

export const WorkerRole = Schema.Literals(["prefill", "decode"]);
export type WorkerRole = typeof WorkerRole.Type;

export const MemberRecord = Schema.TaggedStruct("MemberRecord", {
  v: V,
  id: Schema.String,
  role: WorkerRole,
  model: Schema.String,
  pid: Count,
  vendor: Schema.String,
  device: Schema.String,
  emulated: Schema.Boolean,
  kvFormat: Schema.String,
  inFlight: Count,
  capacity: Count,
  contextSize: Count,
  heartbeatAt: Schema.Number,
  heartbeatMs: Count,
  /** Decode workers: the direct TCP KV listener ("host:port"), when enabled. */
  kvTcp: Schema.optionalKey(Schema.String),
  /**
   * Absent or `serving`: routable. `restarting`: the engine driver is being restarted (out of routing until it is
   * back). `quarantined`: a fatal device fault or too many faults in a window; out of routing for good.
   */
  health: Schema.optionalKey(Schema.Literals(["serving", "restarting", "quarantined"])),
  /** Driver faults seen since the process started, by fault class. */
  faults: Schema.optionalKey(Schema.Record(Schema.String, Count)),
  /** Times this worker's engine driver was restarted by its supervisor. */
  driverRestarts: Schema.optionalKey(Count),
  /** The machine the worker runs on (placement prefers a decode worker on the prefill worker's host). */
  host: Schema.optionalKey(Schema.String),
  /** Decode workers: KV tokens the engine holds at most (sequences × context) and could still take (free sequences × context). */
  kvCapacityTokens: Schema.optionalKey(Count),
  kvFreeTokens: Schema.optionalKey(Count),
  /** The engine's prompt counters since it started: tokens prefilled, evaluated, and found cached (prefix reuse). */
  promptTokens: Schema.optionalKey(Count),
  promptTokensEvaluated: Schema.optionalKey(Count),
  promptTokensReused: Schema.optionalKey(Count),
});
export type MemberRecord = typeof MemberRecord.Type;
