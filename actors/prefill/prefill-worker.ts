// The prefill worker: runs the prompt and reports the first token to the request actor, which sends it to the
// caller (that is the caller's TTFT); then it exports the sequence's KV cache, opens a
// transfer to the chosen decode worker at the KV broker and streams the KV to it.
import { Effect } from "effect";
import type { Msg } from "nats";
import { makeActor } from "../../src/actor/actor.ts";
import { driverFaultToError } from "../../src/engine/driver-fault-error.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { chunkSizeFor } from "../../src/kv/chunking.ts";
import {
  decodeMessage,
  invalidRequest,
  PrefillCommand,
  PrefillDone,
  type Subjects,
  requestKey,
  TandemError,
  TokenChunk,
  TransferAbort,
  TransferOpen,
  TransferOpened,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { dieNow, type ProcessFault } from "../../src/runtime/process-faults.ts";
import type { DriverHealth } from "../../src/engine/supervised-engine.ts";
import { registerWorker, workerMetadata } from "../worker-membership.ts";
import { ask, NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { sendKvRouted } from "../../src/transport/kv-route.ts";
import { kvPayloadOf } from "../../src/engine/emulated/kv-wire.ts";
import { prefixAnnouncer } from "../../src/transport/prefix-events.ts";

export interface PrefillWorkerConfig {
  readonly id: string;
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  /** Give up a transfer when the receiver grants no credit for this long. */
  readonly stallTimeoutMs: number;
  /** KV caches at least this large go over the decode worker's direct TCP listener when it has one. */
  readonly tcpMinBytes: number;
  /** Test hook: die at a chosen point (see src/runtime/process-faults.ts). */
  readonly fault?: ProcessFault | undefined;
  /** The engine driver's health when it runs under its supervisor (reported in membership). */
  readonly driverHealth?: (() => DriverHealth) | undefined;
}

const decodePrefill = decodeMessage(PrefillCommand);
const TCP_CHUNK_BYTES = 4 * 1024 * 1024;

const parseHostPort = (address: string) => {
  const at = address.lastIndexOf(":");
  const port = Number(address.slice(at + 1));
  return at > 0 && Number.isInteger(port) && port > 0 ? { host: address.slice(0, at), port } : undefined;
};

export const runPrefillWorker = (config: PrefillWorkerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { maxPayload } = yield* NatsClient;
    const log = yield* Log;
    let inFlight = 0;

    yield* registerWorker(subjects, config.heartbeatMs, config.id, "prefill", engine, () => inFlight, {}, config.driverHealth);
    const prefixes = prefixAnnouncer(subjects, config.id, engine.info.sequences);

    /** Opens the transfer at the broker and streams `kv`; on any failure the transfer is aborted. */
    const handOver = (command: PrefillCommand, kv: Uint8Array) =>
      Effect.gen(function* () {
        const opened = yield* ask(
          subjects.broker("open"),
          TransferOpen,
          {
            _tag: "TransferOpen",
            requestId: command.requestId,
            attempt: command.attempt,
            sender: config.id,
            receiver: command.decodeWorker,
            ttlMs: command.leaseTtlMs,
          },
          TransferOpened,
          Math.min(5_000, command.leaseTtlMs),
        );
        // llama.cpp hands over the whole state at once: split it per layer, so the receiver can translate
        // layer i while layer i+1 is in flight (an emulated engine's vendor-native envelope goes whole).
        const tcp = command.decodeKvTcp === undefined || kv.length < config.tcpMinBytes ? undefined : parseHostPort(command.decodeKvTcp);
        yield* sendKvRouted({
          // Bulk path: TCP's own flow control, chunks as large as the broker allows without the NATS cap.
          tcp: tcp === undefined ? undefined : { ...tcp, chunkBytes: Math.max(opened.chunkBytes, TCP_CHUNK_BYTES) },
          nats: { subjects, transferId: opened.transferId, chunkBytes: chunkSizeFor(maxPayload, opened.chunkBytes), stallTimeoutMs: config.stallTimeoutMs },
          payload: kvPayloadOf(kv, engine.info.kvFormat),
          onReroute: (error) =>
            Effect.sync(() => log.warn({ requestId: command.requestId, error: error.body }, "direct TCP KV transfer failed; re-routed over NATS")),
        });
      }).pipe(
        Effect.catch((error: TandemError) =>
          Effect.sync(() => log.warn({ requestId: command.requestId, error: error.body }, "kv hand-over failed")).pipe(
            Effect.andThen(
              tell(subjects.broker("abort"), TransferAbort, {
                _tag: "TransferAbort",
                requestId: command.requestId,
                attempt: command.attempt,
                reason: error.reason,
              }),
            ),
            Effect.ignore,
          )
        ),
      );

    const onPrefill = (msg: Msg) =>
      Effect.gen(function* () {
        const command = yield* decodePrefill(msg.data);
        if (config.fault?._tag === "ExitOnPrompt" && command.prompt.includes(config.fault.text)) {
          log.warn({ requestId: command.requestId }, "fault injection: this prompt kills the worker");
          dieNow();
        }
        const tokens = yield* engine.tokenize(command.prompt);
        if (tokens.length + command.maxTokens > engine.info.contextSize) {
          return yield* Effect.fail(
            invalidRequest(
              "prompt_too_long",
              `prompt is ${tokens.length} tokens; with max_tokens ${command.maxTokens} it exceeds the context of ${engine.info.contextSize}`,
            ),
          );
        }
        inFlight++;
        const key = requestKey(command.requestId, command.attempt);
        yield* prefixes.started(key, command.prompt);
        yield* Effect.scoped(
          Effect.gen(function* () {
            const started = performance.now();
            const { sequence, firstToken } = yield* engine.prefill(tokens).pipe(Effect.mapError(driverFaultToError));
            const next = firstToken === engine.info.eosToken ? "eos" : command.maxTokens <= 1 ? "length" : "continue";
            const firstText = next === "eos" ? "" : engine.detokenize([firstToken], tokens);
            // The first token goes to the request actor's attempt inbox too, ahead of the reply: its relay forwards
            // it to the caller from the subscription, without waiting for the reply to be handled.
            if (next !== "eos" && command.replyTo !== undefined) {
              yield* tell(command.replyTo, TokenChunk, { _tag: "TokenChunk", requestId: command.requestId, seq: 0, tokens: [firstToken], text: firstText });
            }
            yield* respond(msg, PrefillDone, {
              _tag: "PrefillDone",
              firstToken,
              firstText,
              promptTokens: tokens.length,
              next,
              prefillMs: performance.now() - started,
              pid: process.pid,
            });
            if (next !== "continue") return;
            const kv = yield* sequence.exportKv.pipe(Effect.mapError(driverFaultToError));
            // The bytes are exported: free the sequence for the next prompt before the transfer runs.
            return kv;
          }),
        ).pipe(
          Effect.ensuring(prefixes.finished(key)),
          Effect.flatMap((kv) => (kv === undefined ? Effect.void : handOver(command, kv))),
          Effect.ensuring(Effect.sync(() => void inFlight--)),
        );
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const actor = yield* makeActor({
      name: "tandem-prefill",
      version: "0.1.0",
      description: "Tandem prefill worker",
      metadata: workerMetadata(config.id, subjects.cluster, engine),
    });
    yield* actor.mailbox({
      endpoint: "prefill",
      subject: subjects.worker(config.id, "prefill"),
      capacity: 256,
      // Prompts run one at a time in the engine; the extra handlers overlap KV hand-overs with the next prompt.
      concurrency: engine.info.sequences,
      handle: onPrefill,
    });
    log.info({ id: config.id, model: engine.info.model }, "prefill worker ready");
  });
