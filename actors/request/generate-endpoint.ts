// What every server of the generate call does the same way, whatever serves the tokens: refuse oversized or
// malformed requests, validate the fields, run the serve under the request's deadline, and end the stream with
// exactly one GenerateDone or GenerateFailed. The disaggregated gateway and the monolithic server share it.
import { Effect } from "effect";
import { type Msg, type NatsConnection, nuid } from "nats";
import {
  deadlineExceeded,
  decodeMessage,
  encodeMessage,
  GenerateDone,
  GenerateFailed,
  GenerateRequest,
  invalidRequest,
  type Route,
  type TandemError,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { NatsClient } from "../../src/transport/nats-client.ts";

export interface GenerateLimits {
  readonly defaultMaxTokens: number;
  readonly maxTokensLimit: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  /** Requests larger than this are refused before decoding (well under NATS max_payload). */
  readonly maxRequestBytes: number;
}

/** What a serve reports; the endpoint turns it into the GenerateDone message. */
export interface ServeResult {
  readonly finishReason: "stop" | "length";
  readonly chunks: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly prefillMs: number;
  readonly transferMs: number;
  readonly decodeMs: number;
  /** performance.now() when the first token left. */
  readonly firstTokenAt: number;
  readonly route: Route;
  /** Attempts it took, when the server recovers failed attempts. */
  readonly attempts?: number;
}

export type Serve<R> = (
  request: GenerateRequest,
  requestId: string,
  inbox: string,
  maxTokens: number,
  admittedAt: number,
) => Effect.Effect<ServeResult, TandemError, R>;

const decodeRequest = decodeMessage(GenerateRequest);

const validate = (limits: GenerateLimits, request: GenerateRequest) => {
  if (request.prompt.trim() === "") return Effect.fail(invalidRequest("empty_prompt", "prompt must not be empty"));
  const maxTokens = request.maxTokens ?? limits.defaultMaxTokens;
  if (maxTokens <= 0 || maxTokens > limits.maxTokensLimit) {
    return Effect.fail(
      invalidRequest("max_tokens_out_of_range", `maxTokens must be between 1 and ${limits.maxTokensLimit}, got ${maxTokens}`),
    );
  }
  const timeoutMs = request.timeoutMs ?? limits.defaultTimeoutMs;
  if (timeoutMs <= 0 || timeoutMs > limits.maxTimeoutMs) {
    return Effect.fail(invalidRequest("invalid_field", `timeoutMs must be between 1 and ${limits.maxTimeoutMs}, got ${timeoutMs}`));
  }
  return Effect.succeed({ maxTokens, timeoutMs });
};

/** What a server keeps of its answers so that a client that reconnects can resume (the gateway's AnswerLog). */
export interface AnswerStore {
  /** Sees each final message as it is published. */
  readonly final: (requestId: string, payload: Uint8Array) => void;
  /** Everything sent for `requestId` so far, in order, or undefined if unknown. */
  readonly sent: (requestId: string) => ReadonlyArray<Uint8Array> | undefined;
}

/**
 * The mailbox handler for the generate subject around `serve`. With `answers`, a request marked `resume` whose id
 * the store knows gets what was sent for it again instead of being served a second time.
 */
export const generateRequestHandler = <R>(limits: GenerateLimits, serve: Serve<R>, answers?: AnswerStore) => (msg: Msg) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const log = yield* Log;
    const admittedAt = performance.now();
    const inbox = msg.reply;
    if (!inbox) {
      log.warn({ subject: msg.subject }, "generate request without a reply subject ignored");
      return;
    }
    let requestId = nuid.next();
    const publish = (payload: Uint8Array) =>
      Effect.sync(() => {
        connection.publish(inbox, payload);
        answers?.final(requestId, payload);
      });
    yield* Effect.gen(function* () {
      if (msg.data.length > limits.maxRequestBytes) {
        return yield* Effect.fail(
          invalidRequest("payload_too_large", `request is ${msg.data.length} bytes; the limit is ${limits.maxRequestBytes}`),
        );
      }
      const request = yield* decodeRequest(msg.data);
      if (request.requestId !== undefined && request.requestId !== "") requestId = request.requestId;
      const sent = request.resume === true ? answers?.sent(requestId) : undefined;
      if (sent !== undefined) {
        for (const payload of sent) connection.publish(inbox, payload);
        log.info({ requestId, messages: sent.length }, "request resumed");
        return;
      }
      const { maxTokens, timeoutMs } = yield* validate(limits, request);
      const result = yield* serve(request, requestId, inbox, maxTokens, admittedAt).pipe(
        Effect.timeoutOrElse({
          duration: timeoutMs,
          orElse: () => Effect.fail(deadlineExceeded(`request ${requestId} did not finish within ${timeoutMs} ms`)),
        }),
      );
      const totalMs = performance.now() - admittedAt;
      const ttftMs = result.firstTokenAt - admittedAt;
      yield* publish(
        encodeMessage(GenerateDone, {
          _tag: "GenerateDone",
          requestId,
          finishReason: result.finishReason,
          chunks: result.chunks,
          usage: { promptTokens: result.promptTokens, completionTokens: result.completionTokens },
          timings: {
            ttftMs,
            prefillMs: result.prefillMs,
            transferMs: result.transferMs,
            decodeMs: result.decodeMs,
            totalMs,
            tpotMs: result.completionTokens > 1 ? (totalMs - ttftMs) / (result.completionTokens - 1) : 0,
          },
          route: result.route,
          ...(result.attempts === undefined ? {} : { attempts: result.attempts }),
        }),
      );
    }).pipe(
      Effect.catch((error: TandemError) =>
        publish(encodeMessage(GenerateFailed, { _tag: "GenerateFailed", requestId, error: error.body }))
      ),
    );
  });

/** How a generate mailbox refuses a message it cannot take (full, or a handler defect): a GenerateFailed. */
export const refuseGenerate = (connection: NatsConnection) => (msg: Msg, error: TandemError) => {
  if (msg.reply) connection.publish(msg.reply, encodeMessage(GenerateFailed, { _tag: "GenerateFailed", requestId: "", error: error.body }));
};
