// The decode worker: when the broker announces a transfer it starts listening for the KV bytes; when the
// request actor sends the decode command it imports the KV into a free sequence (joining the engine's
// continuous batch) and streams tokens straight to the caller's inbox.
import { Deferred, Effect, Fiber, FiberMap } from "effect";
import type { Msg } from "nats";
import { makeActor } from "../../src/actor/actor.ts";
import { driverFaultToError } from "../../src/engine/driver-fault-error.ts";
import type { Engine } from "../../src/engine/engine.ts";
import {
  CancelCommand,
  DecodeCommand,
  DecodeDone,
  decodeMessage,
  encodeMessage,
  KvExpect,
  RECEIVER_OVERLOADED,
  requestKey,
  type Subjects,
  TandemError,
  TokenChunk,
  TransferAbort,
  TransferComplete,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { registerWorker, workerMetadata } from "../worker-membership.ts";
import { flush, NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { creditBudget, DEFAULT_CREDIT_BUDGET_BYTES, listenForKv } from "../../src/transport/nats-kv-channel.ts";
import { serveKvTcp } from "../../src/transport/tcp-kv-channel.ts";
import type { IncomingKv } from "../../src/transport/kv-transfer.ts";
import { kvPayloadPool } from "../../src/transport/kv-payload-pool.ts";
import { receiveKvAs } from "../../src/engine/emulated/kv-wire.ts";
import { dieNow, type ProcessFault } from "../../src/runtime/process-faults.ts";
import type { DriverHealth } from "../../src/engine/supervised-engine.ts";
import { makeDecodeAdmission } from "./decode-admission.ts";

interface Arrival {
  readonly bytes: Uint8Array;
  readonly transferId: string;
}

export interface DecodeWorkerConfig {
  readonly id: string;
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  /** Bytes a sender may have in flight per transfer over NATS (see `ReceiveKvOptions.windowBytes`). */
  readonly creditWindowBytes: number;
  /** Transfers announced but not yet decoded that this worker will hold at once. */
  readonly maxPendingTransfers: number;
  /** How long a decode command waits for its KV (the lease TTL is the natural bound). */
  readonly kvWaitTimeoutMs: number;
  /** Host to listen on for direct TCP KV transfers (advertised in membership); omit to take KV over NATS only. */
  readonly kvTcpHost?: string;
  /** Test hook: die at a chosen point (see src/runtime/process-faults.ts). */
  readonly fault?: ProcessFault | undefined;
  /** The engine driver's health when it runs under its supervisor (reported in membership). */
  readonly driverHealth?: (() => DriverHealth) | undefined;
}

const decodeExpect = decodeMessage(KvExpect);
const decodeCommand = decodeMessage(DecodeCommand);
const decodeCancel = decodeMessage(CancelCommand);

/** Free receive buffers a decode worker keeps for the next transfers. */
const PAYLOAD_POOL_BYTES = 512 * 1024 * 1024;

export const runDecodeWorker = (config: DecodeWorkerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { connection } = yield* NatsClient;
    const log = yield* Log;
    const receivers = yield* FiberMap.make<string>();
    /** Receive buffers, reused once a transfer's KV has been translated into what the engine imports. */
    const payloads = kvPayloadPool(PAYLOAD_POOL_BYTES);
    /** All NATS transfers to this worker share one credit budget, so its connection is never a slow consumer. */
    const credit = creditBudget(DEFAULT_CREDIT_BUDGET_BYTES);
    const decodes = yield* FiberMap.make<string>();
    /** Decodes join the engine's batch through the simulator's admission policy, as many as it has sequences. */
    const { sequences, contextSize } = engine.info;
    const admission = makeDecodeAdmission({ maxSequences: sequences, maxTokens: sequences * contextSize });
    /** Per request attempt (requestKey): the KV once it has arrived, and the transfer it came on. */
    const arrivals = new Map<string, Deferred.Deferred<Arrival, TandemError>>();
    let inFlight = 0;

    /** KV arriving over the direct TCP channel, by transfer id (the announcement may come before or after). */
    const tcpArrivals = new Map<string, Deferred.Deferred<IncomingKv>>();
    const tcpArrivalOf = (transferId: string) => {
      let arrived = tcpArrivals.get(transferId);
      if (arrived === undefined) {
        arrived = Deferred.makeUnsafe<IncomingKv>();
        tcpArrivals.set(transferId, arrived);
      }
      return arrived;
    };
    const kvTcp = config.kvTcpHost === undefined ? undefined : yield* serveKvTcp(config.kvTcpHost, config.kvWaitTimeoutMs, (incoming) =>
      Deferred.succeed(tcpArrivalOf(incoming.transferId), incoming).pipe(
        // Claimed by its transfer's receive fiber, or dropped once the transfer could no longer want it.
        Effect.andThen(Effect.sleep(config.kvWaitTimeoutMs)),
        Effect.andThen(Effect.sync(() => tcpArrivals.delete(incoming.transferId))),
      ), payloads);

    yield* registerWorker(
      subjects,
      config.heartbeatMs,
      config.id,
      "decode",
      engine,
      () => inFlight,
      kvTcp === undefined ? {} : { kvTcp: `${config.kvTcpHost}:${kvTcp}` },
      config.driverHealth,
    );

    /** The arrival slot of a request attempt, created by whichever of announcement and decode command comes first. */
    const arrivalOf = (key: string) => {
      let arrived = arrivals.get(key);
      if (arrived === undefined) {
        arrived = Deferred.makeUnsafe<Arrival, TandemError>();
        arrivals.set(key, arrived);
      }
      return arrived;
    };
    const forget = (key: string) => Effect.sync(() => arrivals.delete(key)).pipe(Effect.andThen(FiberMap.remove(receivers, key)));
    /** The request gave up: stop receiving and stop decoding, so nothing more reaches the caller. */
    const cancel = (key: string) => forget(key).pipe(Effect.andThen(FiberMap.remove(decodes, key)));

    const onExpect = (msg: Msg) =>
      Effect.gen(function* () {
        const expect = yield* decodeExpect(msg.data);
        const key = requestKey(expect.requestId, expect.attempt);
        const abort = (reason: string) =>
          tell(subjects.broker("abort"), TransferAbort, { _tag: "TransferAbort", requestId: expect.requestId, attempt: expect.attempt, reason });
        if (!arrivals.has(key) && arrivals.size >= config.maxPendingTransfers) {
          log.warn({ transferId: expect.transferId, pending: arrivals.size }, "refusing a transfer: too many pending");
          yield* abort(RECEIVER_OVERLOADED);
          return;
        }
        const arrived = arrivalOf(key);
        const listening = yield* Deferred.make<void>();
        const receive = Effect.gen(function* () {
          const offered = yield* listenForKv({
            subjects,
            transferId: expect.transferId,
            windowBytes: config.creditWindowBytes,
            pool: payloads,
            budget: credit,
            idleTimeoutMs: expect.ttlMs,
          });
          yield* Deferred.succeed(listening, undefined);
          // The sender picks the channel: whichever offers first is the one it used.
          const incoming = yield* offered.pipe(Effect.raceFirst(Deferred.await(tcpArrivalOf(expect.transferId))));
          tcpArrivals.delete(expect.transferId);
          // Translated into this engine's layout when it differs (llama.cpp states layer by layer as they arrive,
          // vendor-native KV through canonical), or refused: untranslated bytes are never imported.
          const bytes = yield* receiveKvAs(incoming, engine.info.kvFormat);
          // What the engine imports is a new buffer unless no translation was needed; then it is the payload.
          if (bytes.buffer !== incoming.payload.buffer) incoming.release();
          yield* tell(subjects.broker("complete"), TransferComplete, {
            _tag: "TransferComplete",
            transferId: expect.transferId,
            bytes: incoming.payload.length,
          });
          return { bytes, transferId: expect.transferId };
        }).pipe(
          Effect.tapError((error) => abort(error.reason).pipe(Effect.ignore)),
          Effect.scoped,
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(arrived, exit)),
          // Nobody came to decode it: drop the bytes after the lease time rather than hold them forever.
          Effect.andThen(Effect.sleep(expect.ttlMs)),
          Effect.andThen(Effect.sync(() => {
            if (arrivals.get(key) === arrived) arrivals.delete(key);
          })),
        );
        yield* FiberMap.run(receivers, key, receive);
        yield* Deferred.await(listening);
        if (config.fault?._tag === "ExitAfterKvExpect") {
          log.warn({ transferId: expect.transferId }, "fault injection: exiting before the KV arrives");
          yield* flush;
          dieNow();
        }
      }).pipe(Effect.catch((error: TandemError) => Effect.sync(() => log.warn({ error: error.body }, "bad kv-expect"))));

    const onDecode = (msg: Msg) =>
      Effect.gen(function* () {
        const command = yield* decodeCommand(msg.data);
        // The broker's announcement and this command travel separately and may be handled in either order.
        const key = requestKey(command.requestId, command.attempt);
        const arrived = arrivalOf(key);
        inFlight++;
        const received = performance.now();
        const decoding = Effect.scoped(
          Effect.gen(function* () {
            const { bytes: kv, transferId } = yield* Deferred.await(arrived).pipe(
              Effect.timeoutOrElse({
                duration: config.kvWaitTimeoutMs,
                orElse: () => Effect.fail(unavailable("kv_not_arrived", `KV of request ${key} did not arrive in ${config.kvWaitTimeoutMs} ms`)),
              }),
            );
            // Its final context: the prompt, the token prefill made, and every token decode may add.
            const reserved = command.promptTokens === undefined ? contextSize : Math.min(contextSize, command.promptTokens + 1 + command.maxNewTokens);
            yield* admission.admit(reserved);
            const sequence = yield* engine.importKv(kv).pipe(Effect.mapError(driverFaultToError));
            const waitKvMs = performance.now() - received;
            const started = performance.now();
            let seq = command.startSeq;
            const exitAfter = config.fault?._tag === "ExitAfterTokens" ? config.fault.tokens : undefined;
            const result = yield* sequence.decode(command.firstToken, command.maxNewTokens, (token, text) =>
              Effect.gen(function* () {
                connection.publish(command.replyTo, encodeChunk(command.requestId, seq++, token, text));
                if (exitAfter !== undefined && seq - command.startSeq >= exitAfter) {
                  log.warn({ requestId: command.requestId, tokens: exitAfter }, "fault injection: exiting mid-stream");
                  yield* Effect.promise(() => connection.flush());
                  dieNow();
                }
              })).pipe(Effect.mapError(driverFaultToError));
            yield* flush;
            yield* respond(msg, DecodeDone, {
              _tag: "DecodeDone",
              tokens: result.tokens,
              finishReason: result.finishReason,
              transferId,
              kvBytes: kv.length,
              waitKvMs,
              decodeMs: performance.now() - started,
              pid: process.pid,
            });
          }),
        ).pipe(
          Effect.catch((error: TandemError) => respondFailure(msg, error)),
          Effect.ensuring(Effect.sync(() => void inFlight--).pipe(Effect.andThen(forget(key)))),
        );
        // Run under the request key so a cancel can interrupt it; a cancelled decode just stops (no reply).
        yield* FiberMap.run(decodes, key, decoding).pipe(Effect.flatMap(Fiber.await));
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const onCancel = (msg: Msg) =>
      decodeCancel(msg.data).pipe(
        Effect.flatMap((command) => cancel(requestKey(command.requestId, command.attempt))),
        Effect.ignore,
      );

    const actor = yield* makeActor({
      name: "tandem-decode",
      version: "0.1.0",
      description: "Tandem decode worker",
      metadata: workerMetadata(config.id, subjects.cluster, engine),
    });
    yield* actor.mailbox({ endpoint: "kv-expect", subject: subjects.worker(config.id, "kv-expect"), capacity: 256, concurrency: 8, handle: onExpect });
    yield* actor.mailbox({
      endpoint: "decode",
      subject: subjects.worker(config.id, "decode"),
      capacity: 256,
      // More commands than sequences may wait at once: they queue for a free sequence while their KV arrives.
      concurrency: config.maxPendingTransfers,
      handle: onDecode,
    });
    yield* actor.mailbox({ endpoint: "cancel", subject: subjects.worker(config.id, "cancel"), capacity: 256, concurrency: 1, handle: onCancel });
    log.info({ id: config.id, model: engine.info.model }, "decode worker ready");
  });

const encodeChunk = (requestId: string, seq: number, token: number, text: string) =>
  encodeMessage(TokenChunk, { _tag: "TokenChunk", requestId, seq, tokens: [token], text });
