// The monolithic baseline as a server: the same generate call, answered by one process that prefills and
// decodes on its own engine. It exists so disaggregation's cost can be measured against a served baseline
// (same NATS hops to the client, same protocol), not only against an engine called in-process.
import { Effect } from "effect";
import { makeActor } from "../../src/actor/actor.ts";
import { driverFaultToError } from "../../src/engine/driver-fault-error.ts";
import type { Engine } from "../../src/engine/engine.ts";
import { encodeMessage, GATEWAY_QUEUE, type GenerateRequest, invalidRequest, type Subjects, TokenChunk } from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";
import { type GenerateLimits, generateRequestHandler, refuseGenerate } from "./generate-endpoint.ts";

export interface MonolithicServerConfig extends GenerateLimits {
  readonly id: string;
  readonly subjects: Subjects;
}

export const runMonolithicServer = (config: MonolithicServerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const log = yield* Log;

    const serve = (request: GenerateRequest, requestId: string, inbox: string, maxTokens: number) =>
      Effect.gen(function* () {
        const tokens = yield* engine.tokenize(request.prompt);
        if (tokens.length + maxTokens > engine.info.contextSize) {
          return yield* Effect.fail(
            invalidRequest("prompt_too_long", `prompt is ${tokens.length} tokens; with max_tokens ${maxTokens} it exceeds ${engine.info.contextSize}`),
          );
        }
        const started = performance.now();
        let firstTokenAt = started;
        const generated: number[] = [];
        yield* engine.generate(tokens, maxTokens, (token) => {
          if (generated.length === 0) firstTokenAt = performance.now();
          const text = engine.detokenize([token], [...tokens, ...generated]);
          connection.publish(inbox, encodeMessage(TokenChunk, { _tag: "TokenChunk", requestId, seq: generated.length, tokens: [token], text }));
          generated.push(token);
        }).pipe(Effect.mapError(driverFaultToError));
        const finishedAt = performance.now();
        return {
          finishReason: generated.length < maxTokens ? ("stop" as const) : ("length" as const),
          chunks: generated.length,
          promptTokens: tokens.length,
          completionTokens: generated.length,
          prefillMs: firstTokenAt - started,
          transferMs: 0,
          decodeMs: finishedAt - firstTokenAt,
          firstTokenAt,
          route: {
            prefillWorker: config.id,
            prefillPid: process.pid,
            decodeWorker: config.id,
            decodePid: process.pid,
            transferId: "",
            kvBytes: 0,
          },
        };
      });

    const actor = yield* makeActor({
      name: "tandem-monolithic",
      version: "0.1.0",
      description: "Tandem monolithic baseline: prefill and decode in one process",
      metadata: { id: config.id, cluster: config.subjects.cluster, model: engine.info.model },
    });
    yield* actor.mailbox({
      endpoint: "generate",
      subject: config.subjects.generate,
      queue: GATEWAY_QUEUE,
      capacity: 1024,
      concurrency: engine.info.sequences,
      handle: generateRequestHandler(config, serve),
      refuse: refuseGenerate(connection),
    });
    log.info({ id: config.id, subject: config.subjects.generate }, "monolithic server ready");
  });
