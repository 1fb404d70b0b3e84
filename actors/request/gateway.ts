// The request actor: entry point on `tandem.v1.<cluster>.generate` (queue group, so any gateway answers).
// Each request runs in its own fiber through admitted → prefilling → transferring → decoding → done|failed,
// under a deadline. The caller gets the first token from the prefill worker, the rest straight from the
// decode worker, and exactly one final message (GenerateDone or GenerateFailed) from here.
import { Clock, Deferred, Effect, Result } from "effect";
import { createInbox } from "nats";
import { makeActor } from "../../src/actor/actor.ts";
import { DEFAULT_MAX_LOAD } from "../../src/policy/least-loaded.ts";
import { kvMoveCost } from "../../src/policy/kv-move-cost.ts";
import { kvTokensEstimate, placeRequest } from "../../src/policy/placement.ts";
import { followPrefixIndex } from "../../src/transport/prefix-events.ts";
import { recoveryVerdict } from "../../src/policy/recovery.ts";
import {
  CancelCommand,
  DecodeCommand,
  DecodeDone,
  decodeMessageResult,
  encodeMessage,
  GATEWAY_QUEUE,
  GenerateRequest,
  internal,
  invalidRequest,
  type MemberRecord,
  overloaded,
  PrefillCommand,
  RECEIVER_OVERLOADED,
  requestKey,
  PrefillDone,
  type Subjects,
  TandemError,
  TokenChunk,
  TransferAbort,
  TransferEvent,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { type MembershipView, watchMembership } from "../../src/transport/membership.ts";
import { ask, NatsClient, subscribeScoped, tell } from "../../src/transport/nats-client.ts";
import { RequestLifecycle } from "./request-lifecycle.ts";
import { TokenRelay } from "./token-relay.ts";
import { AnswerLog } from "./answer-log.ts";
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
/** How long a finished answer is kept for a client that reconnects and resumes. */
const ANSWER_KEEP_MS = 60_000;
const decodeTransferEvent = decodeMessageResult(TransferEvent);
const decodeChunk = decodeMessageResult(TokenChunk);

/** How an attempt failed, and the worker it failed on (avoided by the next attempt). */
interface AttemptFailure {
  readonly error: TandemError;
  readonly worker?: string;
}

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
    const prefixes = yield* followPrefixIndex(subjects);
    const assigned = new Map<string, number>();
    const answers = new AnswerLog(ANSWER_KEEP_MS);
    const transfers = new Map<string, TransferWatch>();
    let tieBreak = 0;

    yield* subscribeScoped(subjects.events("transfer"), (msg) => {
      const event = decodeTransferEvent(msg.data);
      if (Result.isFailure(event)) return;
      const watch = transfers.get(requestKey(event.success.requestId, event.success.attempt));
      if (watch) Deferred.doneUnsafe(watch.ended, Effect.succeed({ event: event.success, at: performance.now() }));
    });

    const adjust = (id: string, delta: number) => Effect.sync(() => assigned.set(id, (assigned.get(id) ?? 0) + delta));

    /** Fails with Unavailable once `worker` drops out of live membership (or is replaced by a restarted process). */
    const lost = (worker: MemberRecord) =>
      Effect.gen(function* () {
        while (true) {
          yield* Effect.sleep(Math.max(50, config.heartbeatMs / 2));
          const live = yield* membership.live;
          if (!live.some((m) => m.id === worker.id && m.pid === worker.pid)) {
            return yield* Effect.fail(unavailable("worker_lost", `worker ${worker.id} (pid ${worker.pid}) left the cluster mid-request`));
          }
        }
      });

    /**
     * Picks a pair for this attempt. A retry steers clear of workers that already failed this request: while only
     * they are left it waits (up to two heartbeats, enough for a dead one to leave membership) before taking them.
     */
    const pickPair = (request: GenerateRequest, maxTokens: number, avoid: ReadonlySet<string>) =>
      Effect.gen(function* () {
        const model = request.model;
        // Placement weighs prefix affinity (the prefix index), the decode workers' free KV, translation and link costs.
        const placement = { model, kvTokens: kvTokensEstimate(request.prompt, maxTokens), cachedBlocks: prefixes.cachedBlocks(request.prompt) };
        const startedAt = yield* Clock.currentTimeMillis;
        // A gateway that has just started or reconnected may not have heard every heartbeat yet, and a request
        // being recovered may find a pool restarting: "no workers" means "not yet" for two heartbeat intervals.
        const patient = Effect.all([Clock.currentTimeMillis, membership.since]).pipe(
          Effect.map(([now, viewSince]) => now - Math.max(viewSince, avoid.size > 0 ? startedAt : 0) < config.heartbeatMs * 2),
        );
        const choose = (live: ReadonlyArray<MemberRecord>, mayWait: boolean) => {
          const healthy = live.filter((m) => m.health === undefined || m.health === "serving");
          const pick = (pool: ReadonlyArray<MemberRecord>) =>
            placeRequest(pool, assigned, placement, tieBreak++, { maxLoad: DEFAULT_MAX_LOAD, translationCost: kvMoveCost });
          if (avoid.size === 0) return pick(healthy);
          const fresh = pick(healthy.filter((m) => !avoid.has(m.id)));
          return fresh._tag === "Picked" || mayWait ? fresh : pick(healthy);
        };
        // Admission: while every eligible worker is at its load cap, wait (the deadline still applies).
        let live = yield* membership.live;
        let pick = choose(live, yield* patient);
        while (pick._tag === "Saturated" || (pick._tag === "NoWorkers" && (yield* patient))) {
          yield* Effect.sleep(ADMISSION_POLL_MS);
          live = yield* membership.live;
          pick = choose(live, yield* patient);
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
        return { prefillWorker: live.find((m) => m.id === pick.prefill.id)!, decodeWorker: live.find((m) => m.id === pick.decode.id)! };
      });

    /**
     * One attempt at the request: prefill on one worker, KV to one decode worker, tokens through `relay`. A later
     * attempt starts over from the prompt (the KV of a failed attempt is gone with its lease) and the relay drops
     * the positions the caller already has, after checking they came out the same.
     */
    const runAttempt = (
      request: GenerateRequest,
      requestId: string,
      attempt: number,
      maxTokens: number,
      relay: TokenRelay,
      lifecycle: RequestLifecycle,
      avoid: ReadonlySet<string>,
    ) =>
      Effect.gen(function* (): Effect.fn.Return<ServeResult, AttemptFailure, NatsClient> {
        const { prefillWorker, decodeWorker } = yield* pickPair(request, maxTokens, avoid).pipe(Effect.mapError((error) => ({ error })));
        yield* adjust(prefillWorker.id, 1);
        yield* adjust(decodeWorker.id, 1);
        let blamed = prefillWorker.id;

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
          // Chunks of this attempt arrive on a subject nobody else uses; once the attempt ends it is unsubscribed,
          // so a worker that wakes up late (SIGSTOP) cannot add to the answer.
          const streamBroken = yield* Deferred.make<never, TandemError>();
          const attemptInbox = createInbox();
          yield* subscribeScoped(attemptInbox, (msg) => {
            const chunk = decodeChunk(msg.data);
            if (Result.isFailure(chunk)) return;
            const verdict = relay.accept(chunk.success.seq, chunk.success.tokens, msg.data);
            if (verdict._tag === "Gap") {
              Deferred.doneUnsafe(streamBroken, Effect.fail(unavailable("token_gap", `chunk ${verdict.got} arrived before ${verdict.expected}`)));
            } else if (verdict._tag === "Diverged") {
              Deferred.doneUnsafe(
                streamBroken,
                Effect.fail(internal("replay_diverged", `recovered attempt ${attempt} produced [${verdict.got}] at ${verdict.seq}, the caller has [${verdict.sent}]`)),
              );
            }
          });
          const broken = Deferred.await(streamBroken);

          // Only the prefill worker is on the TTFT path; the broker and the transfer follow the first token.
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
              replyTo: attemptInbox,
              decodeWorker: decodeWorker.id,
              leaseTtlMs: config.leaseTtlMs,
              ...(decodeWorker.kvTcp === undefined ? {} : { decodeKvTcp: decodeWorker.kvTcp }),
            },
            PrefillDone,
            config.maxTimeoutMs,
          ).pipe(Effect.raceFirst(lost(prefillWorker)));
          const firstIsEos = prefill.next === "eos";
          if (!firstIsEos) {
            // Normally the prefill worker's own seq 0 reached the relay just before this reply; if not, send it now.
            if (relay.nextSeq === 0) relay.accept(0, [prefill.firstToken], encodeMessage(TokenChunk, {
              _tag: "TokenChunk",
              requestId,
              seq: 0,
              tokens: [prefill.firstToken],
              text: prefill.firstText,
            }));
            if (relay.tokens[0] !== prefill.firstToken) {
              return yield* Effect.fail(
                internal("replay_diverged", `recovered attempt ${attempt} chose first token ${prefill.firstToken}, the caller has ${relay.tokens[0]}`),
              );
            }
          }
          const firstTokenAt = relay.firstForwardedAt ?? performance.now();
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

          blamed = decodeWorker.id;
          lifecycle.enter("transferring", performance.now());
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
              promptTokens: prefill.promptTokens,
              replyTo: attemptInbox,
              startSeq: 1,
            },
            DecodeDone,
            config.maxTimeoutMs,
          ).pipe(Effect.raceFirst(transferFailed), Effect.raceFirst(lost(decodeWorker)), Effect.raceFirst(broken));
          // Every chunk the decode worker published came before its reply on the same connection.
          if (relay.nextSeq !== firstChunks + decoded.tokens) {
            return yield* Effect.fail(
              unavailable("token_gap", `decode reported ${decoded.tokens} tokens but the answer holds ${relay.nextSeq - firstChunks}`),
            );
          }
          lifecycle.enter("decoding", performance.now());
          lifecycle.enter("done", performance.now());
          return {
            finishReason: decoded.finishReason,
            chunks: relay.nextSeq,
            promptTokens: prefill.promptTokens,
            completionTokens: relay.nextSeq,
            prefillMs: prefill.prefillMs,
            transferMs: lifecycle.span("transferring", "decoding"),
            decodeMs: decoded.decodeMs,
            firstTokenAt,
            route: { ...route, decodePid: decoded.pid, transferId: decoded.transferId, kvBytes: decoded.kvBytes },
          };
        }).pipe(
          Effect.scoped,
          Effect.onError(() => release("request_failed")),
          Effect.mapError((error) => ({ error, worker: blamed })),
          Effect.ensuring(
            Effect.sync(() => transfers.delete(key)).pipe(
              Effect.andThen(adjust(prefillWorker.id, -1)),
              Effect.andThen(adjust(decodeWorker.id, -1)),
            ),
          ),
        );
      });

    const serve = (request: GenerateRequest, requestId: string, inbox: string, maxTokens: number, admittedAt: number) =>
      Effect.gen(function* (): Effect.fn.Return<ServeResult, TandemError, NatsClient> {
        answers.open(requestId);
        const relay = new TokenRelay((payload) => {
          answers.chunk(requestId, payload);
          connection.publish(inbox, payload);
        });
        const failed = new Set<string>();
        let crashes = 0;
        for (let attempt = 0;; attempt++) {
          const lifecycle = new RequestLifecycle(admittedAt);
          const outcome = yield* Effect.result(runAttempt(request, requestId, attempt, maxTokens, relay, lifecycle, failed));
          if (Result.isSuccess(outcome)) {
            if (attempt > 0) log.info({ requestId, attempts: attempt + 1, replayed: relay.replayed }, "request recovered");
            return { ...outcome.success, attempts: attempt + 1 };
          }
          const { error, worker } = outcome.failure;
          const verdict = recoveryVerdict(error, attempt, crashes);
          log.warn({ requestId, attempt, worker, failedIn: lifecycle.state, error: error.body, next: verdict._tag }, "request attempt failed");
          if (verdict._tag === "GiveUp") return yield* Effect.fail(verdict.error);
          if (verdict.crashed) crashes++;
          if (worker !== undefined) failed.add(worker);
          yield* Effect.sleep(verdict.delayMs);
        }
      });

    const handle = generateRequestHandler(config, serve, answers);

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
