// The default KV data plane: the sender offers, then publishes chunks on the transfer's data subject as the
// receiver grants credits on its credit subject. Every chunk carries a CRC-32; the offer carries one for the
// whole payload. Backpressure is the receiver's window; a sender without credit for too long gives up.
import { Effect, Queue, Result, Scope } from "effect";
import { crc32 } from "../kv/checksum.ts";
import { chunkAt, chunkCount } from "../kv/chunking.ts";
import {
  decodeMessageResult,
  internal,
  KvChunk,
  KvCredit,
  KvDataMessage,
  KvOffer,
  type Subjects,
  type TandemError,
  unavailable,
} from "../protocol/index.ts";
import { NatsClient, subscribeScoped, tell } from "./nats-client.ts";

export interface SendKvOptions {
  readonly subjects: Subjects;
  readonly transferId: string;
  readonly bytes: Uint8Array;
  readonly chunkBytes: number;
  readonly format: string;
  /** Give up when no credit arrives for this long (the receiver is gone or stuck). */
  readonly stallTimeoutMs: number;
}

const decodeCredit = decodeMessageResult(KvCredit);
const decodeData = decodeMessageResult(KvDataMessage);

export const sendKv = (options: SendKvOptions): Effect.Effect<void, TandemError, NatsClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { subjects, transferId, bytes, chunkBytes } = options;
      const chunks = chunkCount(bytes.length, chunkBytes);
      // Credits are granted at most once per chunk, so `chunks` bounds the queue.
      const credits = yield* Queue.bounded<number>(chunks + 1);
      yield* subscribeScoped(subjects.kvCredit(transferId), (msg) => {
        const credit = decodeCredit(msg.data);
        if (Result.isSuccess(credit)) Queue.offerUnsafe(credits, credit.success.grant);
      });
      yield* tell(subjects.kvData(transferId), KvOffer, {
        _tag: "KvOffer",
        transferId,
        totalBytes: bytes.length,
        chunks,
        chunkBytes,
        checksum: crc32(bytes),
        format: options.format,
      });
      let available = 0;
      for (let index = 0; index < chunks; index++) {
        while (available === 0) {
          available += yield* Queue.take(credits).pipe(
            Effect.timeoutOrElse({
              duration: options.stallTimeoutMs,
              orElse: () =>
                Effect.fail(
                  unavailable("kv_receiver_stalled", `no credit from the receiver of ${transferId} for ${options.stallTimeoutMs} ms`),
                ),
            }),
          );
        }
        const chunk = chunkAt(bytes, chunkBytes, index);
        yield* tell(subjects.kvData(transferId), KvChunk, { _tag: "KvChunk", transferId, index, bytes: chunk, checksum: crc32(chunk) });
        available--;
      }
      const { connection } = yield* NatsClient;
      yield* Effect.promise(() => connection.flush().catch(() => undefined));
    }),
  );

export interface ReceiveKvOptions {
  readonly subjects: Subjects;
  readonly transferId: string;
  /** Chunks the sender may have in flight. */
  readonly window: number;
  /** Fail when the sender has not offered or sent anything for this long. */
  readonly idleTimeoutMs: number;
}

/**
 * Subscribes to the transfer's data subject (the subscription is live when this effect returns) and
 * returns an effect that completes with the reassembled, checksum-verified payload.
 */
export const listenForKv = (
  options: ReceiveKvOptions,
): Effect.Effect<Effect.Effect<Uint8Array, TandemError, NatsClient>, never, NatsClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { subjects, transferId } = options;
    const inbox = yield* Queue.bounded<Uint8Array>(options.window + 2);
    yield* subscribeScoped(subjects.kvData(transferId), (msg) => {
      // A sender within its credit never overflows the window; one that does loses the excess and stalls.
      Queue.offerUnsafe(inbox, msg.data);
    });
    const next = Queue.take(inbox).pipe(
      Effect.timeoutOrElse({
        duration: options.idleTimeoutMs,
        orElse: () =>
          Effect.fail(unavailable("kv_sender_stalled", `nothing from the sender of ${transferId} for ${options.idleTimeoutMs} ms`)),
      }),
      Effect.flatMap((bytes) => Effect.fromResult(decodeData(bytes))),
    );
    const grant = (n: number) => tell(subjects.kvCredit(transferId), KvCredit, { _tag: "KvCredit", transferId, grant: n });

    return Effect.gen(function* () {
      const offer = yield* next;
      if (offer._tag !== "KvOffer") return yield* Effect.fail(internal("kv_protocol", `chunk before offer on ${transferId}`));
      const payload = new Uint8Array(offer.totalBytes);
      let outstanding = Math.min(options.window, offer.chunks);
      yield* grant(outstanding);
      for (let received = 0; received < offer.chunks;) {
        const message = yield* next;
        if (message._tag !== "KvChunk") return yield* Effect.fail(internal("kv_protocol", `second offer on ${transferId}`));
        if (crc32(message.bytes) !== message.checksum) {
          return yield* Effect.fail(internal("kv_checksum_mismatch", `chunk ${message.index} of ${transferId} is corrupt`));
        }
        payload.set(message.bytes, message.index * offer.chunkBytes);
        received++;
        outstanding--;
        const remaining = offer.chunks - received;
        if (remaining > outstanding) {
          yield* grant(1);
          outstanding++;
        }
      }
      if (crc32(payload) !== offer.checksum) {
        return yield* Effect.fail(internal("kv_checksum_mismatch", `payload of ${transferId} does not match its checksum`));
      }
      return payload;
    });
  });
