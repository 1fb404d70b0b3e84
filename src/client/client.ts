// A small NATS client for the generate call, for the CLI, tests and anyone embedding Tandem in a Node or
// Deno program. It publishes one GenerateRequest with a private reply inbox, puts the streamed chunks in
// `seq` order and resolves once the final message and every chunk it counts have arrived. If the connection
// reconnects meanwhile (a NATS restart drops messages), it asks again with `resume`, and the gateway re-sends.
import { Result } from "effect";
import { createInbox, Events, type NatsConnection, nuid, type Status } from "nats";
import {
  CURRENT_VERSION,
  decodeMessageResult,
  encodeMessage,
  Failure,
  type GenerateDone,
  type GenerateFailed,
  GenerateReply,
  GenerateRequest,
  type Subjects,
  type TokenChunk,
} from "../protocol/index.ts";

export interface GenerateOutcome {
  readonly final: GenerateDone | GenerateFailed;
  /** Chunks in `seq` order. */
  readonly chunks: ReadonlyArray<TokenChunk>;
  readonly tokens: ReadonlyArray<number>;
  readonly text: string;
  /** Chunks whose `seq` was seen more than once (must be 0). */
  readonly duplicateChunks: number;
  /** `seq` numbers below the final count that never arrived (must be 0). */
  readonly missingChunks: number;
  /** Milliseconds from publishing the request to the first chunk (NaN when none came). */
  readonly ttftMs: number;
  readonly totalMs: number;
}

export interface GenerateOptions {
  readonly onChunk?: (chunk: TokenChunk) => void;
  /** Local give-up time; defaults to the request's timeoutMs (or 30 s) plus 5 s. */
  readonly clientTimeoutMs?: number;
  /** How long to wait for chunks the final message counts but that have not arrived yet. */
  readonly reorderGraceMs?: number;
}

const decodeReply = decodeMessageResult(GenerateReply);
const decodeFailure = decodeMessageResult(Failure);

const failed = (requestId: string, code: GenerateFailed["error"]["code"], reason: string, message: string): GenerateFailed => ({
  _tag: "GenerateFailed",
  v: CURRENT_VERSION as 1,
  requestId,
  error: { code, reason, message },
});

export const generate = (
  nc: NatsConnection,
  subjects: Subjects,
  request: Omit<GenerateRequest, "_tag" | "v">,
  options: GenerateOptions = {},
): Promise<GenerateOutcome> => {
  const started = performance.now();
  // Every request gets an id, so that after a reconnect it can be resumed rather than run again.
  const requestId = request.requestId ?? nuid.next();
  const payload = encodeMessage(GenerateRequest, { _tag: "GenerateRequest", ...request, requestId });
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  const outcome = (final: GenerateDone | GenerateFailed, bySeq: Map<number, TokenChunk>, duplicates: number, firstAt: number) => {
    const chunks = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    const expected = final._tag === "GenerateDone" ? final.chunks : chunks.length;
    let missing = 0;
    for (let seq = 0; seq < expected; seq++) if (!bySeq.has(seq)) missing++;
    return {
      final,
      chunks,
      tokens: chunks.flatMap((c) => c.tokens),
      text: chunks.map((c) => c.text).join(""),
      duplicateChunks: duplicates,
      missingChunks: missing,
      ttftMs: firstAt - started,
      totalMs: performance.now() - started,
    };
  };
  if (payload.length > maxPayload) {
    return Promise.resolve(
      outcome(
        failed(requestId, "InvalidRequest", "payload_too_large", `request is ${payload.length} bytes; NATS max_payload is ${maxPayload}`),
        new Map(),
        0,
        Number.NaN,
      ),
    );
  }
  return new Promise((resolve) => {
    const bySeq = new Map<number, TokenChunk>();
    let duplicates = 0;
    let firstAt = Number.NaN;
    let final: GenerateDone | GenerateFailed | undefined;
    /** Set once this request was re-sent after a reconnect: chunks we already hold may then come again. */
    let resumed = false;
    const inbox = nc.subscribe(createInbox());
    // NATS drops messages while a server restarts. After a reconnect, ask the gateway to re-send what it sent.
    // nats.js hands out a queued iterator that can be stopped; the type only promises an AsyncIterable.
    const connection = nc.status() as AsyncIterable<Status> & { readonly stop?: () => void };
    void (async () => {
      for await (const status of connection) {
        if (status.type !== Events.Reconnect || final !== undefined) continue;
        resumed = true;
        nc.publish(subjects.generate, encodeMessage(GenerateRequest, { _tag: "GenerateRequest", ...request, requestId, resume: true }), {
          reply: inbox.getSubject(),
        });
      }
    })();
    const finish = (result: GenerateDone | GenerateFailed) => {
      clearTimeout(timer);
      connection.stop?.();
      inbox.unsubscribe();
      resolve(outcome(result, bySeq, duplicates, firstAt));
    };
    const complete = () => {
      if (final && (final._tag === "GenerateFailed" || bySeq.size >= final.chunks)) finish(final);
    };
    const timer = setTimeout(
      () => finish(final ?? failed(requestId, "DeadlineExceeded", "client_timeout", "no final message before the client timeout")),
      options.clientTimeoutMs ?? (request.timeoutMs ?? 30_000) + 5_000,
    );
    (async () => {
      for await (const msg of inbox) {
        if (msg.headers?.code === 503) {
          finish(failed(requestId, "Unavailable", "no_gateway", `no gateway listens on ${subjects.generate}`));
          return;
        }
        const reply = decodeReply(msg.data);
        if (Result.isFailure(reply)) {
          // A bare Failure is an actor refusing before it could speak the generate protocol.
          const refusal = decodeFailure(msg.data);
          if (Result.isSuccess(refusal)) finish({ ...failed(requestId, "Internal", "", ""), error: refusal.success.error });
          continue;
        }
        const message = reply.success;
        if (message._tag === "TokenChunk") {
          if (Number.isNaN(firstAt)) firstAt = performance.now();
          const held = bySeq.get(message.seq);
          if (held !== undefined) {
            // A resume re-sends what we may already hold; only a different token at a held position is an error.
            const same = held.tokens.length === message.tokens.length && held.tokens.every((t, i) => t === message.tokens[i]);
            if (!resumed || !same) duplicates++;
          } else {
            bySeq.set(message.seq, message);
            options.onChunk?.(message);
          }
          complete();
        } else {
          final = message;
          complete();
          if (final._tag === "GenerateDone" && bySeq.size < final.chunks) {
            setTimeout(() => finish(message), options.reorderGraceMs ?? 2_000);
          }
        }
      }
    })();
    nc.publish(subjects.generate, payload, { reply: inbox.getSubject() });
  });
};
