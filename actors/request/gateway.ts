// The request actor: entry point on `tandem.v1.<cluster>.generate` (queue group, so any gateway answers).
// Each request runs in its own fiber through admitted → prefilling → transferring → decoding → done|failed,
// under a deadline. The caller gets the first token from the prefill worker, the rest straight from the
// decode worker, and exactly one final message (GenerateDone or GenerateFailed) from here.
import { Clock, Deferred, Effect, Result } from "effect";
import { makeActor } from "../../src/actor/actor.ts";
import { DEFAULT_MAX_LOAD, pickLeastLoaded } from "../../src/policy/least-loaded.ts";
import { canMoveState } from "../../src/kv/llama-format.ts";
import {
  CancelCommand,
  DecodeCommand,
  DecodeDone,
  decodeMessageResult,
  GATEWAY_QUEUE,
  type GenerateRequest,
  invalidRequest,
  overloaded,
  PrefillCommand,
  RECEIVER_OVERLOADED,
  requestKey,
  PrefillDone,
  type Subjects,
  TandemError,
  TransferAbort,
  TransferEvent,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { type MembershipView, watchMembership } from "../../src/transport/membership.ts";
import { ask, NatsClient, subscribeScoped, tell } from "../../src/transport/nats-client.ts";
import { RequestLifecycle } from "./request-lifecycle.ts";
import { type GenerateLimits, generateRequestHandler, refuseGenerate, type ServeResult } from "./generate-endpoint.ts";

export interface GatewayConfig extends GenerateLimits {
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  readonly leaseTtlMs: number;
  /** Requests this gateway runs at once; more get `Overloaded`. */
  readonly maxInFlight: number;
}

export const GATEWAY_DEFAULTS = {
  heartbeatMs: 1_000,
  defaultMaxTokens: 64,
  maxTokensLimit: 256,
  defaultTimeoutMs: 30_000,
  maxTimeoutMs: 300_000,
  maxRequestBytes: 256 * 1024,
  leaseTtlMs: 10_000,
  maxInFlight: 256,
} as const;

const ADMISSION_POLL_MS = 5;
const decodeTransferEvent = decodeMessageResult(TransferEvent);

type TransferEnd = { readonly event: TransferEvent; readonly at: number };
interface TransferWatch {
  readonly ended: Deferred.Deferred<TransferEnd>;
}

export const runGateway = (config: GatewayConfig) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { connection } = yield* NatsClient;
    const log = yield* Log;
    const membership: MembershipView = yield* watchMembership(subjects.membersBucket, config.heartbeatMs);
    const assigned = new Map<string, number>();
    const transfers = new Map<string, TransferWatch>();
    let tieBreak = 0;
    const gatewayStartedAt = yield* Clock.currentTimeMillis;

    yield* subscribeScoped(subjects.events("transfer"), (msg) => {
      const event = decodeTransferEvent(msg.data);
      if (Result.isFailure(event)) return;
      const watch = transfers.get(requestKey(event.success.requestId, event.success.attempt));
      if (watch) Deferred.doneUnsafe(watch.ended, Effect.succeed({ event: event.success, at: performance.now() }));
    });

    const adjust = (id: string, delta: number) => Effect.sync(() => assigned.set(id, (assigned.get(id) ?? 0) + delta));

    /** Fails with Unavailable once `workerId` drops out of live membership. */
    const lost = (workerId: string) =>
      Effect.gen(function* () {
        while (true) {
          yield* Effect.sleep(Math.max(50, config.heartbeatMs / 2));
          const live = yield* membership.live;
          if (!live.some((m) => m.id === workerId)) {
            return yield* Effect.fail(unavailable("worker_lost", `worker ${workerId} left the cluster mid-request`));
          }
        }
      });

    const serve = (request: GenerateRequest, requestId: string, inbox: string, maxTokens: number, admittedAt: number) =>
      Effect.gen(function* (): Effect.fn.Return<ServeResult, TandemError, NatsClient> {
        const lifecycle = new RequestLifecycle(admittedAt);
        // Admission: while every eligible worker is at its load cap, wait (the deadline still applies).
        let live = yield* membership.live;
        let pick = pickLeastLoaded(live, assigned, request.model, tieBreak++, DEFAULT_MAX_LOAD, canMoveState);
        // A gateway that has just started may not have heard every heartbeat yet: treat "no workers" as
        // "not yet" for two heartbeat intervals.
        const warmingUp = Clock.currentTimeMillis.pipe(Effect.map((now) => now - gatewayStartedAt < config.heartbeatMs * 2));
        while (pick._tag === "Saturated" || (pick._tag === "NoWorkers" && (yield* warmingUp))) {
          yield* Effect.sleep(ADMISSION_POLL_MS);
          live = yield* membership.live;
          pick = pickLeastLoaded(live, assigned, request.model, tieBreak++, DEFAULT_MAX_LOAD, canMoveState);
        }
        if (pick._tag === "UnknownModel") {
          return yield* Effect.fail(
            invalidRequest("unknown_model", `model "${pick.model}" is not served here; served: ${pick.served.join(", ") || "none"}`),
          );
        }
        if (pick._tag === "NoWorkers") return yield* Effect.fail(unavailable("no_workers", `no live ${pick.role} worker for ${pick.model}`));
        if (pick._tag === "NoCompatiblePair") {
          return yield* Effect.fail(
            unavailable(
              "no_compatible_pair",
              `no KV translation path for ${pick.model} from prefill formats [${pick.prefillFormats.join(", ")}] to decode formats [${
                pick.decodeFormats.join(", ")
              }]`,
            ),
          );
        }
        const prefillWorker = live.find((m) => m.id === pick.prefill.id)!;
        const decodeWorker = live.find((m) => m.id === pick.decode.id)!;
        yield* adjust(prefillWorker.id, 1);
        yield* adjust(decodeWorker.id, 1);

        const attempt = 0;
        const key = requestKey(requestId, attempt);
        const watch: TransferWatch = { ended: yield* Deferred.make<TransferEnd>() };
        transfers.set(key, watch);
        /** Ends this attempt's transfer and decode, wherever they are: the broker drops the lease, the decode worker stops. */
        const release = (reason: string) =>
          Effect.all([
            tell(subjects.broker("abort"), TransferAbort, { _tag: "TransferAbort", requestId, attempt, reason }),
            tell(subjects.worker(decodeWorker.id, "cancel"), CancelCommand, { _tag: "CancelCommand", requestId, attempt }),
          ]).pipe(Effect.ignore);

        return yield* Effect.gen(function* () {
          // Only the prefill worker is on the TTFT path: it publishes the first token to the caller itself, then
          // opens the transfer to the decode worker at the broker and sends the KV.
          lifecycle.enter("prefilling", performance.now());
          const prefill = yield* ask(
            subjects.worker(prefillWorker.id, "prefill"),
            PrefillCommand,
            {
              _tag: "PrefillCommand",
              requestId,
              attempt,
              prompt: request.prompt,
              maxTokens,
              replyTo: inbox,
              decodeWorker: decodeWorker.id,
              leaseTtlMs: config.leaseTtlMs,
              ...(decodeWorker.kvTcp === undefined ? {} : { decodeKvTcp: decodeWorker.kvTcp }),
            },
            PrefillDone,
            config.maxTimeoutMs,
          ).pipe(Effect.raceFirst(lost(prefillWorker.id)));
          const firstTokenAt = performance.now();
          const firstIsEos = prefill.next === "eos";
          const firstChunks = firstIsEos ? 0 : 1;
          const route = {
            prefillWorker: prefillWorker.id,
            prefillPid: prefill.pid,
            decodeWorker: decodeWorker.id,
            decodePid: 0,
            transferId: "",
            kvBytes: 0,
          };

          if (prefill.next !== "continue") {
            lifecycle.enter("done", performance.now());
            return {
              finishReason: firstIsEos ? ("stop" as const) : ("length" as const),
              chunks: firstChunks,
              promptTokens: prefill.promptTokens,
              completionTokens: firstChunks,
              prefillMs: prefill.prefillMs,
              transferMs: 0,
              decodeMs: 0,
              firstTokenAt,
              route,
            };
          }

          lifecycle.enter("transferring", firstTokenAt);
          const transferFailed = Deferred.await(watch.ended).pipe(
            Effect.flatMap(({ event, at }) => {
              if (event.state === "completed") {
                lifecycle.enter("decoding", at);
                return Effect.never;
              }
              const message = `KV transfer ${event.transferId} ${event.state}: ${event.reason}`;
              return Effect.fail(
                event.reason === RECEIVER_OVERLOADED ? overloaded(RECEIVER_OVERLOADED, message) : unavailable(`kv_transfer_${event.state}`, message),
              );
            }),
          );
          const decoded = yield* ask(
            subjects.worker(decodeWorker.id, "decode"),
            DecodeCommand,
            {
              _tag: "DecodeCommand",
              requestId,
              attempt,
              firstToken: prefill.firstToken,
              maxNewTokens: maxTokens - 1,
              replyTo: inbox,
              startSeq: 1,
            },
            DecodeDone,
            config.maxTimeoutMs,
          ).pipe(Effect.raceFirst(transferFailed), Effect.raceFirst(lost(decodeWorker.id)));
          lifecycle.enter("decoding", performance.now());
          lifecycle.enter("done", performance.now());
          return {
            finishReason: decoded.finishReason,
            chunks: firstChunks + decoded.tokens,
            promptTokens: prefill.promptTokens,
            completionTokens: firstChunks + decoded.tokens,
            prefillMs: prefill.prefillMs,
            transferMs: lifecycle.span("transferring", "decoding"),
            decodeMs: decoded.decodeMs,
            firstTokenAt,
            route: { ...route, decodePid: decoded.pid, transferId: decoded.transferId, kvBytes: decoded.kvBytes },
          };
        }).pipe(
          Effect.onError(() => release("request_failed")),
          Effect.ensuring(
            Effect.sync(() => transfers.delete(key)).pipe(
              Effect.andThen(adjust(prefillWorker.id, -1)),
              Effect.andThen(adjust(decodeWorker.id, -1)),
            ),
          ),
        );
      });

    const handle = generateRequestHandler(config, serve);

    const actor = yield* makeActor({
      name: "tandem-gateway",
      version: "0.1.0",
      description: "Tandem request actor: entry for generate calls",
      metadata: { cluster: subjects.cluster },
    });
    yield* actor.mailbox({
      endpoint: "generate",
      subject: subjects.generate,
      queue: GATEWAY_QUEUE,
      capacity: config.maxInFlight * 4,
      concurrency: config.maxInFlight,
      handle,
      refuse: refuseGenerate(connection),
    });
    log.info({ subject: subjects.generate }, "gateway ready");
  });
