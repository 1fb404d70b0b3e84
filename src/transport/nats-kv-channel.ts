// The default KV data plane. The sender offers on the transfer's data subject; the receiver answers with
// credit on the credit subject and the sender publishes chunks up to it. Neither side has to subscribe first:
// until the offer arrives the receiver keeps sending `upTo: 0` ("listening, no offer"), which makes the sender
// offer again. Credits are cumulative (`upTo`), so repeats are harmless. Every chunk carries its CRC-32 and
// the offer a CRC-32 over those, so each byte is checked once. A sender without new credit for too long, or a
// receiver without data, gives up.
import { Effect, Queue, Result, Scope } from "effect";
import { crc32 } from "../kv/checksum.ts";
import { chunkAt, chunkCount } from "../kv/chunking.ts";
import {
  decodeMessageResult,
  internal,
  KvChunk,
  KvCredit,
  KvOffer,
  type Subjects,
  type TandemError,
  unavailable,
} from "../protocol/index.ts";
import { NatsClient, subscribeScoped, tell } from "./nats-client.ts";
import { decodeKvChunkFrame, isKvChunkFrame, kvChunkHeaders } from "../protocol/kv-chunk-frame.ts";

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
const decodeOffer = decodeMessageResult(KvOffer);

export const sendKv = (options: SendKvOptions): Effect.Effect<void, TandemError, NatsClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { subjects, transferId, bytes, chunkBytes } = options;
      const { connection } = yield* NatsClient;
      const chunks = chunkCount(bytes.length, chunkBytes);
      const checksums = new Uint32Array(chunks);
      for (let index = 0; index < chunks; index++) checksums[index] = crc32(chunkAt(bytes, chunkBytes, index));
      // A receiver's `upTo` only grows, so when this small buffer is full the sliding queue drops the oldest
      // (lowest) credits and keeps the newest: nothing is lost.
      const credits = yield* Queue.sliding<number>(16);
      yield* subscribeScoped(subjects.kvCredit(transferId), (msg) => {
        const credit = decodeCredit(msg.data);
        if (Result.isSuccess(credit)) Queue.offerUnsafe(credits, credit.success.upTo);
      });
      const offer = tell(subjects.kvData(transferId), KvOffer, {
        _tag: "KvOffer",
        transferId,
        totalBytes: bytes.length,
        chunks,
        chunkBytes,
        checksum: manifestChecksum(checksums),
        format: options.format,
      });
      let allowed = 0;
      /** Waits until chunk `index` may be sent; `upTo: 0` means "I am listening and have no offer": offer again. */
      const awaitCredit = (index: number) =>
        Effect.gen(function* () {
          while (allowed <= index) {
            const upTo = yield* Queue.take(credits).pipe(
              Effect.timeoutOrElse({
                duration: options.stallTimeoutMs,
                orElse: () =>
                  Effect.fail(
                    unavailable("kv_receiver_stalled", `no credit from the receiver of ${transferId} for ${options.stallTimeoutMs} ms`),
                  ),
              }),
            );
            if (upTo === 0 && index === 0) yield* offer;
            allowed = Math.max(allowed, upTo);
          }
        });
      yield* offer;
      for (let index = 0; index < chunks; index++) {
        yield* awaitCredit(index);
        yield* Effect.try({
          try: () =>
            connection.publish(subjects.kvData(transferId), chunkAt(bytes, chunkBytes, index), {
              headers: kvChunkHeaders(transferId, index, checksums[index]!),
            }),
          catch: (cause) => unavailable("transport", `publishing chunk ${index} of ${transferId} failed: ${String(cause)}`),
        });
      }
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

export interface ReceivedKv {
  readonly transferId: string;
  readonly bytes: Uint8Array;
  /** The sender's KV format, from its offer; the receiver decides whether it must translate. */
  readonly format: string;
}

/**
 * Subscribes to the transfer's data subject (the subscription is live when this effect returns) and
 * returns an effect that completes with the reassembled, checksum-verified payload.
 */
export const listenForKv = (
  options: ReceiveKvOptions,
): Effect.Effect<Effect.Effect<ReceivedKv, TandemError, NatsClient>, never, NatsClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { subjects, transferId } = options;
    const inbox = yield* Queue.bounded<Result.Result<KvOffer | KvChunk, TandemError>>(options.window + 2);
    yield* subscribeScoped(subjects.kvData(transferId), (msg) => {
      // A sender within its credit never overflows the window; one that does loses the excess and stalls.
      Queue.offerUnsafe(inbox, isKvChunkFrame(msg) ? decodeKvChunkFrame(msg) : decodeOffer(msg.data));
    });
    const next = Queue.take(inbox).pipe(
      Effect.timeoutOrElse({
        duration: options.idleTimeoutMs,
        orElse: () =>
          Effect.fail(unavailable("kv_sender_stalled", `nothing from the sender of ${transferId} for ${options.idleTimeoutMs} ms`)),
      }),
      Effect.flatMap(Effect.fromResult),
    );
    const grant = (upTo: number) => tell(subjects.kvCredit(transferId), KvCredit, { _tag: "KvCredit", transferId, upTo });

    return Effect.gen(function* () {
      // Until the offer arrives, keep saying "listening, no offer yet" (upTo 0): the sender may have offered
      // before we subscribed, and answers this by offering again.
      const offer = yield* next.pipe(Effect.raceFirst(Effect.forever(grant(0).pipe(Effect.andThen(Effect.sleep(HELLO_MS))))));
      if (offer._tag !== "KvOffer") return yield* Effect.fail(internal("kv_protocol", `chunk before offer on ${transferId}`));
      const payload = new Uint8Array(offer.totalBytes);
      const checksums = new Uint32Array(offer.chunks);
      let granted = Math.min(offer.chunks, options.window);
      yield* grant(granted);
      for (let received = 0; received < offer.chunks;) {
        const message = yield* next;
        if (message._tag !== "KvChunk") continue; // a repeated offer
        if (crc32(message.bytes) !== message.checksum) {
          return yield* Effect.fail(internal("kv_checksum_mismatch", `chunk ${message.index} of ${transferId} is corrupt`));
        }
        payload.set(message.bytes, message.index * offer.chunkBytes);
        checksums[message.index] = message.checksum;
        received++;
        if (granted < offer.chunks) {
          granted = Math.min(offer.chunks, received + options.window);
          yield* grant(granted);
        }
      }
      if (manifestChecksum(checksums) !== offer.checksum) {
        return yield* Effect.fail(internal("kv_checksum_mismatch", `the chunks of ${transferId} do not match its manifest`));
      }
      return { transferId, bytes: payload, format: offer.format };
    });
  });

/** CRC-32 over the chunk CRC-32s: proves every chunk arrived, in place, without a second pass over the bytes. */
const manifestChecksum = (checksums: Uint32Array) => crc32(new Uint8Array(checksums.buffer, checksums.byteOffset, checksums.byteLength));

/** How often a receiver says it is listening while it waits for the offer. */
const HELLO_MS = 20;
