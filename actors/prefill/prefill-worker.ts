// The prefill worker: runs the prompt, replies with the first token at once (that is the caller's TTFT),
// then streams the sequence's KV cache to the decode worker over the transfer the broker opened.
import { Effect } from "effect";
import { makeActor } from "../../src/actor/actor.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { chunkSizeFor } from "../../src/kv/chunking.ts";
import {
  decodeMessage,
  invalidRequest,
  PrefillCommand,
  PrefillDone,
  type Subjects,
  TandemError,
  TransferAbort,
} from "../../src/protocol/index.ts";
import { registerMember } from "../../src/transport/membership.ts";
import { NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { sendKv } from "../../src/transport/nats-kv-channel.ts";
import { Log } from "../../src/runtime/log.ts";
import { driverFaultToError } from "../../src/engine/driver-fault-error.ts";

export interface PrefillWorkerConfig {
  readonly id: string;
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  readonly stallTimeoutMs: number;
}

const decodeCommand = decodeMessage(PrefillCommand);

export const runPrefillWorker = (config: PrefillWorkerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { connection, maxPayload } = yield* NatsClient;
    const log = yield* Log;
    let inFlight = 0;

    yield* registerMember(config.subjects.membersBucket, config.heartbeatMs, () => ({
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

    const handle = (msg: import("nats").Msg) =>
      Effect.gen(function* () {
        const command = yield* decodeCommand(msg.data);
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
            const kv = next !== "continue" ? new Uint8Array(0) : yield* sequence.exportKv.pipe(Effect.mapError(driverFaultToError));
            const prefillMs = performance.now() - started;
            yield* respond(msg, PrefillDone, {
              _tag: "PrefillDone",
              firstToken,
              firstText: firstToken === engine.info.eosToken ? "" : engine.detokenize([firstToken], tokens),
              promptTokens: tokens.length,
              next,
              kvBytes: kv.length,
              prefillMs,
              pid: process.pid,
            });
            if (next !== "continue") return;
            yield* sendKv({
              subjects: config.subjects,
              transferId: command.transferId,
              bytes: kv,
              chunkBytes: chunkSizeFor(maxPayload, command.chunkBytes),
              format: engine.info.kvFormat,
              stallTimeoutMs: config.stallTimeoutMs,
            }).pipe(
              Effect.catch((error) =>
                Effect.sync(() => log.warn({ transferId: command.transferId, error: error.body }, "kv send failed")).pipe(
                  Effect.andThen(
                    tell(config.subjects.broker("abort"), TransferAbort, {
                      _tag: "TransferAbort",
                      transferId: command.transferId,
                      reason: error.reason,
                    }),
                  ),
                  Effect.ignore,
                )
              ),
            );
          }),
        ).pipe(Effect.ensuring(Effect.sync(() => void inFlight--)));
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const actor = yield* makeActor({
      name: "tandem-prefill",
      version: "0.1.0",
      description: "Tandem prefill worker",
      metadata: { id: config.id, cluster: config.subjects.cluster, model: engine.info.model, kvFormat: engine.info.kvFormat },
    });
    yield* actor.mailbox({
      endpoint: "prefill",
      subject: config.subjects.worker(config.id, "prefill"),
      capacity: 256,
      concurrency: engine.info.sequences,
      handle,
    });
    log.info({ id: config.id, model: engine.info.model, server: connection.getServer() }, "prefill worker ready");
  });

