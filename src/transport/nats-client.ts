// The NATS connection as an Effect service: connect on layer build, drain on release, and the four moves
// every actor needs (ask, tell, publish to a reply inbox, subscribe) with NATS failures mapped to typed errors.
import { Context, Effect, Layer } from "effect";
import { connect, ErrorCode, type Msg, type NatsConnection, type NatsError, type Subscription } from "nats";
import { type AnySchema, decodeMessage, encodeMessage, TandemError, unavailable } from "../protocol/index.ts";
import { Failure } from "../protocol/messages.ts";
import { type BulkSink, type NatsBulkReader, openNatsBulkReader } from "./nats-bulk-reader.ts";

export interface NatsClientOptions {
  readonly servers: string;
  readonly name: string;
}

export class NatsClient extends Context.Service<NatsClient, {
  readonly connection: NatsConnection;
  readonly maxPayload: number;
  /** A second connection, opened on first use, that lands bulk messages (KV chunks) in place. */
  readonly bulk: NatsBulkReader;
}>()("tandem/transport/NatsClient") {
  static readonly layer = (options: NatsClientOptions) =>
    Layer.effect(
      NatsClient,
      Effect.gen(function* () {
        const connection = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              connect({
                servers: options.servers,
                name: options.name,
                maxReconnectAttempts: -1,
                reconnectTimeWait: 250,
                pingInterval: 5_000,
                // nats.js captures a stack per request for async traces; that costs on every ask.
                noAsyncTraces: true,
              }),
            catch: (cause) =>
              unavailable("nats_unreachable", `cannot connect to NATS at ${options.servers}: ${String(cause)}`),
          }),
          (nc) => Effect.promise(() => nc.drain().catch(() => nc.close())),
        );
        const bulk = yield* Effect.acquireRelease(
          Effect.sync(() => openNatsBulkReader({ server: () => connection.getServer(), name: `${options.name}-bulk`, ...credentialsOf(options.servers) })),
          (reader) => Effect.sync(() => reader.close()),
        );
        return NatsClient.of({ connection, maxPayload: connection.info?.max_payload ?? 1024 * 1024, bulk });
      }),
    );
}

/** The user and password (or token: a user alone) in the first server URL, as nats.js reads them. */
const credentialsOf = (servers: string): { user?: string; pass?: string; token?: string } => {
  const first = servers.split(",")[0]!.trim();
  try {
    const url = new URL(first.includes("://") ? first : `nats://${first}`);
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    if (user === "") return {};
    return pass === "" ? { token: user } : { user, pass };
  } catch {
    return {};
  }
};

const decodeFailure = decodeMessage(Failure);

/** Maps a NATS request failure onto the error a caller can act on. */
const requestError = (subject: string, cause: unknown): TandemError => {
  const code = (cause as NatsError | undefined)?.code;
  if (code === ErrorCode.NoResponders) return unavailable("no_responders", `nobody serves ${subject}`);
  if (code === ErrorCode.Timeout) return unavailable("timeout", `no reply from ${subject} in time`);
  if (code === ErrorCode.MaxPayloadExceeded) {
    return new TandemError({ code: "InvalidRequest", reason: "payload_too_large", message: String(cause) });
  }
  return unavailable("transport", `request to ${subject} failed: ${String(cause)}`);
};

/**
 * Request/reply: encodes `message`, waits up to `timeoutMs`, and decodes the reply with `replySchema`.
 * A `Failure` reply becomes a failed effect carrying the remote TandemError.
 */
export const ask = <Req extends AnySchema, Rep extends AnySchema>(
  subject: string,
  requestSchema: Req,
  message: Omit<Req["Type"], "v">,
  replySchema: Rep,
  timeoutMs: number,
): Effect.Effect<Rep["Type"], TandemError, NatsClient> =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const payload = encodeMessage(requestSchema, message);
    const reply = yield* Effect.tryPromise({
      try: () => connection.request(subject, payload, { timeout: Math.max(1, Math.ceil(timeoutMs)) }),
      catch: (cause) => requestError(subject, cause),
    });
    return yield* decodeReply(replySchema, reply.data);
  });

const decoders = new WeakMap<object, (bytes: Uint8Array) => Effect.Effect<unknown, TandemError>>();
const decoderFor = <S extends AnySchema>(schema: S) => {
  let decoder = decoders.get(schema);
  if (!decoder) {
    decoder = decodeMessage(schema);
    decoders.set(schema, decoder);
  }
  return decoder as (bytes: Uint8Array) => Effect.Effect<S["Type"], TandemError>;
};

/** Decodes a reply that is either `schema` or a `Failure`. */
export const decodeReply = <S extends AnySchema>(schema: S, bytes: Uint8Array) =>
  decodeFailure(bytes).pipe(
    Effect.matchEffect({
      onSuccess: (failure) => Effect.fail(TandemError.fromBody(failure.error)),
      onFailure: () => decoderFor(schema)(bytes),
    }),
  );

/** Fire-and-forget publish of one encoded message. */
export const tell = <S extends AnySchema>(subject: string, schema: S, message: Omit<S["Type"], "v">) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    yield* Effect.try({
      try: () => connection.publish(subject, encodeMessage(schema, message)),
      catch: (cause) => requestError(subject, cause),
    });
  });

/** Answers a request message now (no-op when the sender did not ask for a reply); for NATS callbacks. */
export const reply = <S extends AnySchema>(msg: Msg, schema: S, message: Omit<S["Type"], "v">): void => {
  if (msg.reply) msg.respond(encodeMessage(schema, message));
};
export const replyFailure = (msg: Msg, error: TandemError): void => reply(msg, Failure, { _tag: "Failure", error: error.body });

export const respond = <S extends AnySchema>(msg: Msg, schema: S, message: Omit<S["Type"], "v">) =>
  Effect.sync(() => reply(msg, schema, message));
export const respondFailure = (msg: Msg, error: TandemError) => Effect.sync(() => replyFailure(msg, error));

/** A scoped plain subscription with a synchronous callback (used for data-plane subjects). */
export const subscribeScoped = (subject: string, callback: (msg: Msg) => void) =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    return yield* Effect.acquireRelease(
      Effect.sync((): Subscription => connection.subscribe(subject, { callback: (_err, msg) => callback(msg) })),
      (sub) => Effect.sync(() => sub.unsubscribe()),
    );
  });

/** Subscribes `sink` to bulk messages on `subject` for the scope (live when this returns), see NatsBulkReader. */
export const bulkSubscribeScoped = (subject: string, sink: BulkSink) =>
  Effect.gen(function* () {
    const { bulk } = yield* NatsClient;
    return yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => bulk.subscribe(subject, sink),
        catch: (cause) => unavailable("transport", `cannot subscribe to ${subject} for bulk data: ${String(cause)}`),
      }),
      (subscription) => Effect.sync(() => subscription.unsubscribe()),
    );
  });

/** Waits until the server has processed everything this connection published so far. */
export const flush = Effect.gen(function* () {
  const { connection } = yield* NatsClient;
  yield* Effect.promise(() => connection.flush().catch(() => undefined));
});
