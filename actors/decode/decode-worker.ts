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
  type Subjects,
  TandemError,
  TokenChunk,
  TransferAbort,
  TransferComplete,
  unavailable,
} from "../../src/protocol/index.ts";
import { Log } from "../../src/runtime/log.ts";
import { registerMember } from "../../src/transport/membership.ts";
import { flush, NatsClient, respond, respondFailure, tell } from "../../src/transport/nats-client.ts";
import { listenForKv } from "../../src/transport/nats-kv-channel.ts";

export interface DecodeWorkerConfig {
  readonly id: string;
  readonly subjects: Subjects;
  readonly heartbeatMs: number;
  /** Chunks a sender may have in flight per transfer. */
  readonly creditWindow: number;
  /** Transfers announced but not yet decoded that this worker will hold at once. */
  readonly maxPendingTransfers: number;
  /** How long a decode command waits for its KV (the lease TTL is the natural bound). */
  readonly kvWaitTimeoutMs: number;
  /** Test hook: exit the process right after it is told of a transfer (and subscribed), before any KV arrives. */
  readonly exitAfterKvExpect?: boolean;
}

const decodeExpect = decodeMessage(KvExpect);
const decodeCommand = decodeMessage(DecodeCommand);
const decodeCancel = decodeMessage(CancelCommand);

export const runDecodeWorker = (config: DecodeWorkerConfig, engine: Engine) =>
  Effect.gen(function* () {
    const { subjects } = config;
    const { connection } = yield* NatsClient;
    const log = yield* Log;
    const receivers = yield* FiberMap.make<string>();
    const decodes = yield* FiberMap.make<string>();
    const arrivals = new Map<string, Deferred.Deferred<Uint8Array, TandemError>>();
    let inFlight = 0;

    yield* registerMember(subjects.membersBucket, config.heartbeatMs, () => ({
      id: config.id,
      role: "decode",
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

    /** The arrival slot of a transfer, created by whichever of announcement and decode command comes first. */
    const arrivalOf = (transferId: string) => {
      let arrived = arrivals.get(transferId);
      if (arrived === undefined) {
        arrived = Deferred.makeUnsafe<Uint8Array, TandemError>();
        arrivals.set(transferId, arrived);
      }
      return arrived;
    };
    const forget = (transferId: string) =>
      Effect.sync(() => arrivals.delete(transferId)).pipe(Effect.andThen(FiberMap.remove(receivers, transferId)));
    /** The request gave up: stop receiving and stop decoding, so nothing more reaches the caller. */
    const cancel = (transferId: string) => forget(transferId).pipe(Effect.andThen(FiberMap.remove(decodes, transferId)));

    const onExpect = (msg: Msg) =>
      Effect.gen(function* () {
        const expect = yield* decodeExpect(msg.data);
        if (!arrivals.has(expect.transferId) && arrivals.size >= config.maxPendingTransfers) {
          log.warn({ transferId: expect.transferId, pending: arrivals.size }, "refusing a transfer: too many pending");
          yield* tell(subjects.broker("abort"), TransferAbort, {
            _tag: "TransferAbort",
            transferId: expect.transferId,
            reason: RECEIVER_OVERLOADED,
          });
          return;
        }
        const arrived = arrivalOf(expect.transferId);
        const listening = yield* Deferred.make<void>();
        const receive = Effect.gen(function* () {
          const receiveAll = yield* listenForKv({
            subjects,
            transferId: expect.transferId,
            window: config.creditWindow,
            idleTimeoutMs: expect.ttlMs,
          });
          yield* Deferred.succeed(listening, undefined);
          const bytes = yield* receiveAll;
          yield* tell(subjects.broker("complete"), TransferComplete, {
            _tag: "TransferComplete",
            transferId: expect.transferId,
            bytes: bytes.length,
          });
          return bytes;
        }).pipe(
          Effect.tapError((error) =>
            tell(subjects.broker("abort"), TransferAbort, { _tag: "TransferAbort", transferId: expect.transferId, reason: error.reason })
              .pipe(Effect.ignore)
          ),
          Effect.scoped,
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(arrived, exit)),
          // Nobody came to decode it: drop the bytes after the lease time rather than hold them forever.
          Effect.andThen(Effect.sleep(expect.ttlMs)),
          Effect.andThen(Effect.sync(() => {
            if (arrivals.get(expect.transferId) === arrived) arrivals.delete(expect.transferId);
          })),
        );
        yield* FiberMap.run(receivers, expect.transferId, receive);
        yield* Deferred.await(listening);
        if (config.exitAfterKvExpect) {
          log.warn({ transferId: expect.transferId }, "fault injection: exiting before the KV arrives");
          yield* flush;
          process.exit(137);
        }
      }).pipe(Effect.catch((error: TandemError) => Effect.sync(() => log.warn({ error: error.body }, "bad kv-expect"))));

    const onDecode = (msg: Msg) =>
      Effect.gen(function* () {
        const command = yield* decodeCommand(msg.data);
        // The broker's announcement and this command travel separately and may be handled in either order.
        const arrived = arrivalOf(command.transferId);
        inFlight++;
        const received = performance.now();
        const decoding = Effect.scoped(
          Effect.gen(function* () {
            const kv = yield* Deferred.await(arrived).pipe(
              Effect.timeoutOrElse({
                duration: config.kvWaitTimeoutMs,
                orElse: () => Effect.fail(unavailable("kv_not_arrived", `KV of ${command.transferId} did not arrive in ${config.kvWaitTimeoutMs} ms`)),
              }),
            );
            const sequence = yield* engine.importKv(kv).pipe(Effect.mapError(driverFaultToError));
            const waitKvMs = performance.now() - received;
            const started = performance.now();
            let seq = command.startSeq;
            const result = yield* sequence.decode(command.firstToken, command.maxNewTokens, (token, text) =>
              Effect.sync(() =>
                connection.publish(
                  command.replyTo,
                  encodeChunk(command.requestId, seq++, token, text),
                )
              )).pipe(Effect.mapError(driverFaultToError));
            yield* flush;
            yield* respond(msg, DecodeDone, {
              _tag: "DecodeDone",
              tokens: result.tokens,
              finishReason: result.finishReason,
              kvBytes: kv.length,
              waitKvMs,
              decodeMs: performance.now() - started,
              pid: process.pid,
            });
          }),
        ).pipe(
          Effect.catch((error: TandemError) => respondFailure(msg, error)),
          Effect.ensuring(Effect.sync(() => void inFlight--).pipe(Effect.andThen(forget(command.transferId)))),
        );
        // Run under the transfer id so a cancel can interrupt it; a cancelled decode just stops (no reply).
        yield* FiberMap.run(decodes, command.transferId, decoding).pipe(Effect.flatMap(Fiber.await));
      }).pipe(Effect.catch((error: TandemError) => respondFailure(msg, error)));

    const onCancel = (msg: Msg) =>
      decodeCancel(msg.data).pipe(
        Effect.flatMap((command) => cancel(command.transferId)),
        Effect.ignore,
      );

    const actor = yield* makeActor({
      name: "tandem-decode",
      version: "0.1.0",
      description: "Tandem decode worker",
      metadata: { id: config.id, cluster: subjects.cluster, model: engine.info.model, kvFormat: engine.info.kvFormat },
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
