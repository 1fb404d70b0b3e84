// The prefill worker: runs the prompt, publishes the first token straight to the caller's inbox (that is the
// caller's TTFT) and reports it to the request actor, then exports the sequence's KV cache and holds it until the request actor says which transfer to send it
// on (the broker opens that transfer while prefill runs). Held KV that nobody asks for is dropped.
import { Deferred, Effect, FiberMap } from "effect";
import type { Msg } from "nats";
import { makeActor } from "../../src/actor/actor.ts";
import { driverFaultToError } from "../../src/engine/driver-fault-error.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { chunkSizeFor } from "../../src/kv/chunking.ts";
import {
  decodeMessage,
  invalidRequest,
  KvSendCommand,
  PrefillCommand,
  PrefillDone,
  type Subjects,
  TandemError,
  TokenChunk,
  TransferAbort,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { registerMember } from "../../src/transport/membership.ts";
import { NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { sendKv } from "../../src/transport/nats-kv-channel.ts";

export interface PrefillWorkerConfig {
  readonly id: string;
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  /** Give up a transfer when the receiver grants no credit for this long; also how long KV is held unclaimed. */
  readonly stallTimeoutMs: number;
}

const decodePrefill = decodeMessage(PrefillCommand);
const decodeSend = decodeMessage(KvSendCommand);

const heldKey = (requestId: string, attempt: number) => `${requestId}#${attempt}`;

export const runPrefillWorker = (config: PrefillWorkerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { maxPayload } = yield* NatsClient;
    const log = yield* Log;
    /** Exported KV waiting for its KvSendCommand, keyed by (requestId, attempt). */
    const held = new Map<string, Deferred.Deferred<KvSendCommand>>();
    const senders = yield* FiberMap.make<string>();
    let inFlight = 0;

    yield* registerMember(subjects.membersBucket, config.heartbeatMs, () => ({
      id: config.id,
      role: "prefill",
      model: engine.info.model,
      pid: process.pid,
      vendor: engine.info.vendor,
      device: engine.info.device,
      emulated: engine.info.emulated,
      kvFormat: engine.info.kvFormat,
      inFlight,
      capacity: engine.info.sequences,
      contextSize: engine.info.contextSize,
    }));

    /** Waits for the send command, then streams `kv`; any failure aborts the transfer at the broker. */
    const deliver = (key: string, kv: Uint8Array, claimed: Deferred.Deferred<KvSendCommand>) =>
      Effect.gen(function* () {
        const send = yield* Deferred.await(claimed).pipe(
          Effect.timeoutOrElse({
            duration: config.stallTimeoutMs,
            orElse: () => Effect.fail(unavailable("kv_unclaimed", `nobody asked for the KV of ${key}`)),
          }),
        );
        yield* sendKv({
          subjects,
          transferId: send.transferId,
          bytes: kv,
          chunkBytes: chunkSizeFor(maxPayload, send.chunkBytes),
          format: engine.info.kvFormat,
          stallTimeoutMs: config.stallTimeoutMs,
        }).pipe(
          Effect.tapError((error) =>
            tell(subjects.broker("abort"), TransferAbort, { _tag: "TransferAbort", transferId: send.transferId, reason: error.reason })
              .pipe(Effect.ignore)
          ),
        );
      }).pipe(
        Effect.catch((error: TandemError) => Effect.sync(() => log.warn({ key, error: error.body }, "kv not delivered"))),
        Effect.ensuring(Effect.sync(() => held.delete(key))),
      );

    const onPrefill = (msg: Msg) =>
      Effect.gen(function* () {
        const command = yield* decodePrefill(msg.data);
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
        yield* Effect.scoped(
          Effect.gen(function* () {
            const started = performance.now();
            const { sequence, firstToken } = yield* engine.prefill(tokens).pipe(Effect.mapError(driverFaultToError));
            const next = firstToken === engine.info.eosToken ? "eos" : command.maxTokens <= 1 ? "length" : "continue";
            const key = heldKey(command.requestId, command.attempt);
            // Registered before replying, so a KvSendCommand that races the reply finds it.
            const claimed = yield* Deferred.make<KvSendCommand>();
            if (next === "continue") held.set(key, claimed);
            const firstText = next === "eos" ? "" : engine.detokenize([firstToken], tokens);
            if (next !== "eos") {
              yield* tell(command.replyTo, TokenChunk, {
                _tag: "TokenChunk",
                requestId: command.requestId,
                seq: 0,
                tokens: [firstToken],
                text: firstText,
              });
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
            // The sequence is released when this scope closes; the bytes travel on without it.
            yield* FiberMap.run(senders, key, deliver(key, kv, claimed));
          }),
        ).pipe(Effect.ensuring(Effect.sync(() => void inFlight--)));
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const onSend = (msg: Msg) =>
      decodeSend(msg.data).pipe(
        Effect.flatMap((send) => {
          const claimed = held.get(heldKey(send.requestId, send.attempt));
          return claimed === undefined
            ? tell(subjects.broker("abort"), TransferAbort, { _tag: "TransferAbort", transferId: send.transferId, reason: "kv_not_held" })
            : Deferred.succeed(claimed, send);
        }),
        Effect.ignore,
      );

    const actor = yield* makeActor({
      name: "tandem-prefill",
      version: "0.1.0",
      description: "Tandem prefill worker",
      metadata: { id: config.id, cluster: subjects.cluster, model: engine.info.model, kvFormat: engine.info.kvFormat },
    });
    yield* actor.mailbox({
      endpoint: "prefill",
      subject: subjects.worker(config.id, "prefill"),
      capacity: 256,
      concurrency: engine.info.sequences,
      handle: onPrefill,
    });
    yield* actor.mailbox({ endpoint: "kv-send", subject: subjects.worker(config.id, "kv-send"), capacity: 256, concurrency: 4, handle: onSend });
    log.info({ id: config.id, model: engine.info.model }, "prefill worker ready");
  });
