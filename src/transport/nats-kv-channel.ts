// The default KV data plane. The sender offers (the layer table) on the transfer's data subject; the receiver
// answers on the credit subject and the sender publishes chunks up to its credit, each layer as soon as the
// producer hands it over. Neither side has to subscribe first: until the offer arrives the receiver keeps
// sending `upTo: 0` ("listening, no offer"), which makes the sender offer again. Credits are cumulative
// (`upTo`, and `received`: everything below it arrived intact), so repeats are harmless. A chunk that fails its
// checksum, or is missing when the sender has gone quiet, is asked for again (`KvResend`); the sender keeps every
// chunk until `received` passes it. A sender without word from the receiver for too long, a receiver without
// data, or a chunk asked for too often, ends the transfer with a typed error.
import { Effect, Queue, Result, Scope, Stream } from "effect";
import { endsLayer, kvLayout, layerChunk } from "../kv/chunking.ts";
import {
  decodeMessageResult,
  encodeMessage,
  internal,
  type KvChunk,
  KvCredit,
  KvOffer,
  KvReceiverMessage,
  KvResend,
  type Subjects,
  type TandemError,
  unavailable,
} from "../protocol/index.ts";
import { bulkSubscribeScoped, NatsClient, subscribeScoped, tell } from "./nats-client.ts";
import { decodeKvChunkHeaders, type HeaderLookup, isKvChunkFrame, kvChunkHeaders } from "../protocol/kv-chunk-frame.ts";
import type { KvPayloadPool } from "./kv-payload-pool.ts";
import { type IncomingKv, KvReassembly, type KvPayload, layerQueue, layoutOfOffer, offerFor, sealChunk } from "./kv-transfer.ts";

export interface SendKvOptions {
  readonly subjects: Subjects;
  readonly transferId: string;
  readonly payload: KvPayload;
  readonly chunkBytes: number;
  /** Give up when the receiver says nothing for this long while the sender waits on it. */
  readonly stallTimeoutMs: number;
}

const decodeReceiverMessage = decodeMessageResult(KvReceiverMessage);
const decodeOffer = decodeMessageResult(KvOffer);

export const sendKv = (options: SendKvOptions): Effect.Effect<void, TandemError, NatsClient> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { subjects, transferId, payload } = options;
      const { connection } = yield* NatsClient;
      const layout = kvLayout(payload.layerBytes, options.chunkBytes);
      const dataSubject = subjects.kvData(transferId);
      const offer = encodeMessage(KvOffer, offerFor(transferId, payload, layout));
      const checksums = new Uint32Array(layout.chunks);
      const manifests: Array<number | undefined> = [];
      /** Layers kept for resends until the receiver has every chunk of them. */
      const kept: Array<Uint8Array | undefined> = [];
      let sent = 0;
      let allowed = 0;
      let received = 0;
      const publishChunk = (index: number) => {
        const layer = layout.chunkLayers[index]!;
        connection.publish(dataSubject, layerChunk(layout, kept[layer]!, index), {
          headers: kvChunkHeaders(transferId, index, checksums[index]!, endsLayer(layout, index) ? manifests[layer] : undefined),
        });
      };
      // Any word from the receiver wakes the sender; a sliding queue of one keeps just "something happened".
      const heard = yield* Queue.sliding<void>(1);
      yield* subscribeScoped(subjects.kvCredit(transferId), (msg) => {
        const decoded = decodeReceiverMessage(msg.data);
        if (Result.isFailure(decoded)) return;
        const message = decoded.success;
        try {
          if (message._tag === "KvCredit") {
            // `upTo: 0` before any credit: the receiver is listening but has no offer; offer again.
            if (message.upTo === 0 && allowed === 0) connection.publish(dataSubject, offer);
            allowed = Math.max(allowed, message.upTo);
            received = Math.max(received, message.received ?? 0);
            for (let layer = 0; layer < kept.length && layout.firstChunks[layer + 1]! <= received; layer++) kept[layer] = undefined;
          } else {
            for (const index of message.chunks) if (index >= received && index < sent) publishChunk(index);
          }
        } catch {
          // The connection is closing; the wait below times out and reports it.
        }
        Queue.offerUnsafe(heard, undefined);
      });
      const awaitReceiver = (ready: () => boolean) =>
        Effect.gen(function* () {
          while (!ready()) {
            yield* Queue.take(heard).pipe(
              Effect.timeoutOrElse({
                duration: options.stallTimeoutMs,
                orElse: () =>
                  Effect.fail(unavailable("kv_receiver_stalled", `no word from the receiver of ${transferId} for ${options.stallTimeoutMs} ms`)),
              }),
            );
          }
        });
      const publish = (index: number) =>
        Effect.try({
          try: () => publishChunk(index),
          catch: (cause) => unavailable("transport", `publishing chunk ${index} of ${transferId} failed: ${String(cause)}`),
        });

      connection.publish(dataSubject, offer);
      yield* Stream.runForEach(payload.layers, (bytes) =>
        Effect.gen(function* () {
          const layer = kept.length;
          if (bytes.length !== layout.layerBytes[layer]) {
            return yield* Effect.fail(internal("kv_protocol", `layer ${layer} of ${transferId} is ${bytes.length} bytes; the offer says ${layout.layerBytes[layer]}`));
          }
          kept.push(bytes);
          const sums = payload.blockChecksums?.(layer);
          for (let index = layout.firstChunks[layer]!; index < layout.firstChunks[layer + 1]!; index++) {
            yield* awaitReceiver(() => allowed > index);
            manifests[layer] = sealChunk(layout, checksums, index, layerChunk(layout, bytes, index), sums);
            yield* publish(index);
            sent = index + 1;
          }
        }));
      if (kept.length !== layout.layerBytes.length) {
        return yield* Effect.fail(internal("kv_protocol", `${transferId} produced ${kept.length} of its ${layout.layerBytes.length} layers`));
      }
      // Keep every chunk until the receiver has all of them: it may still ask for some again.
      yield* awaitReceiver(() => received >= layout.chunks);
    }),
  );

export interface ReceiveKvOptions {
  readonly subjects: Subjects;
  readonly transferId: string;
  /**
   * Bytes the sender may have in flight beyond the first chunk still missing, as whole chunks (at least
   * {@link MIN_WINDOW_CHUNKS}). Sized in bytes, not chunks, so small chunks still keep the pipe full and large
   * ones do not pile up in nats-server's buffers for a slow receiver.
   */
  readonly windowBytes: number;
  /** Fail when the sender has not offered or sent anything for this long. */
  readonly idleTimeoutMs: number;
  /** Silence after which missing chunks are asked for again (default 50 ms). */
  readonly gapMs?: number;
  /** Where the payload's buffer comes from (default: a fresh one). */
  readonly pool?: KvPayloadPool;
  /** Shared by a worker's transfers: the window is at most its share while this transfer is under way. */
  readonly budget?: CreditBudget;
}

/**
 * Bytes a receiving worker lets all its NATS transfers have in flight together, shared equally among the
 * transfers under way (each still gets at least MIN_WINDOW_CHUNKS). It keeps what nats-server buffers for the
 * worker's connection under its max_pending (64 MiB by default), past which the server drops the connection
 * as a slow consumer. Credits already granted are not taken back, so a new transfer narrows the others' windows
 * from their next credit on.
 */
export interface CreditBudget {
  /** This transfer's share now, in bytes. */
  readonly share: () => number;
  readonly enter: () => void;
  readonly leave: () => void;
}

export const creditBudget = (totalBytes: number): CreditBudget => {
  let active = 0;
  return {
    share: () => Math.floor(totalBytes / Math.max(1, active)),
    enter: () => void active++,
    leave: () => void active--,
  };
};

/**
 * Subscribes to the transfer's data subject (the subscription is live when this effect returns) and returns
 * an effect that waits for the offer; its layers then arrive on the result while the scope stays open.
 */
export const listenForKv = (
  options: ReceiveKvOptions,
): Effect.Effect<Effect.Effect<IncomingKv, TandemError, NatsClient | Scope.Scope>, TandemError, NatsClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { subjects, transferId } = options;
    const gapMs = options.gapMs ?? GAP_MS;
    const client = yield* NatsClient;
    const tellCredit = (upTo: number, received: number) =>
      tell(subjects.kvCredit(transferId), KvCredit, { _tag: "KvCredit", transferId, upTo, received });
    // Chunks land in their place in the payload as they stream in (the bulk reader) and are checked there at
    // once; the fiber below hears of each only to grant credit or ask again. A sender within its credit never
    // fills this queue (for chunks of at least MIN_CHUNK_BYTES); past it, news is dropped and the silence that
    // follows makes the receiver ask for what is missing.
    const inbox = yield* Queue.bounded<Result.Result<KvOffer | ChunkLanded, TandemError>>(
      2 * Math.max(MIN_WINDOW_CHUNKS, Math.ceil(options.windowBytes / MIN_CHUNK_BYTES)) + 4,
    );
    const tellFiber = (news: Result.Result<KvOffer | ChunkLanded, TandemError>) => void Queue.offerUnsafe(inbox, news);
    const protocolError = (message: string) => tellFiber(Result.fail(internal("kv_protocol", message)));
    /** Set once the offer has arrived; chunks land in its payload. */
    let reassembly: KvReassembly | undefined;
    /** The chunk whose payload is streaming in, if the message under way is one. */
    let landing: Omit<KvChunk, "bytes"> | undefined;
    yield* bulkSubscribeScoped(subjects.kvData(transferId), {
      begin: (headers, length) => {
        landing = undefined;
        const header: HeaderLookup = (name) => headers?.get(name);
        if (!isKvChunkFrame(header)) return new Uint8Array(length); // the offer
        const fields = decodeKvChunkHeaders(header);
        if (Result.isFailure(fields)) return void tellFiber(Result.fail(fields.failure));
        const r = reassembly;
        const { index } = fields.success;
        if (r === undefined) return void protocolError(`chunk before offer on ${transferId}`);
        const verdict = r.accepts(index, length);
        if (verdict === "invalid") return void protocolError(`chunk ${index} of ${transferId} (${length} bytes) is not in its offer`);
        if (verdict !== "new") return undefined; // already here, or the transfer is over
        landing = fields.success;
        return r.slot(index);
      },
      end: (payload) => {
        const chunk = landing;
        landing = undefined;
        if (chunk === undefined) return tellFiber(decodeOffer(payload));
        const r = reassembly!;
        const committed = r.commit(chunk.index, chunk.checksum, chunk.layerChecksum);
        // The last chunk completes the transfer here, and its consumer may close this scope (and the fiber
        // below) before the fiber hears of it: the final credit, telling the sender it may let go, goes now.
        if (r.complete) Effect.runSync(Effect.ignore(tellCredit(r.layout.chunks, r.layout.chunks)).pipe(Effect.provideService(NatsClient, client)));
        tellFiber(Result.map(committed, (intact): ChunkLanded => ({ _tag: "ChunkLanded", index: chunk.index, intact })));
      },
    });
    const takeWithin = (ms: number) =>
      Queue.take(inbox).pipe(Effect.timeoutOrElse({ duration: ms, orElse: () => Effect.succeed(undefined) }));
    const stalled = () => unavailable("kv_sender_stalled", `nothing from the sender of ${transferId} for ${options.idleTimeoutMs} ms`);

    /** Takes chunks until every layer is whole, granting credit and asking for what is lost or corrupt. */
    const receive = (r: KvReassembly) =>
      Effect.gen(function* () {
        const { chunks, chunkBytes } = r.layout;
        const { budget } = options;
        let window = windowChunks(options.windowBytes, chunkBytes);
        let granted = 0;
        const grant = () => {
          if (budget !== undefined) window = windowChunks(Math.min(options.windowBytes, budget.share()), chunkBytes);
          granted = Math.max(granted, Math.min(chunks, r.contiguous + window));
          return tellCredit(granted, r.contiguous);
        };
        const askAgain = (indexes: ReadonlyArray<number>) =>
          Effect.fromResult(r.askAgain(indexes)).pipe(
            Effect.flatMap((again) =>
              again.length === 0 ? Effect.void : tell(subjects.kvCredit(transferId), KvResend, { _tag: "KvResend", transferId, chunks: again })
            ),
          );
        yield* grant();
        let quietMs = 0;
        while (!r.complete) {
          const next = yield* takeWithin(gapMs);
          if (next === undefined) {
            quietMs += gapMs;
            if (quietMs >= options.idleTimeoutMs) return yield* Effect.fail(stalled());
            // Silence: a chunk or a credit may have been lost. Ask for what is missing and repeat the credit.
            yield* askAgain(r.missingAfterSilence(granted, window));
            yield* grant();
            continue;
          }
          quietMs = 0;
          const message = yield* Effect.fromResult(next);
          if (message._tag !== "ChunkLanded") continue; // a repeated offer
          if (!message.intact) yield* askAgain([message.index]);
          // A credit per quarter window keeps the sender's pipe full at a quarter of the messages.
          else if (r.contiguous + window >= Math.min(chunks, granted + Math.max(1, window >> 2))) yield* grant();
        }
      }).pipe(
        Effect.catch((error: TandemError) => Effect.sync(() => r.fail(error))),
        // Entered and left by the same fiber: a transfer whose fiber never ran never holds a share.
        (receiving) => Effect.acquireUseRelease(Effect.sync(() => options.budget?.enter()), () => receiving, () => Effect.sync(() => options.budget?.leave())),
      );

    return Effect.gen(function* () {
      // Until the offer arrives, keep saying "listening, no offer yet" (upTo 0): the sender may have offered
      // before we subscribed, and answers this by offering again.
      const first = yield* takeWithin(options.idleTimeoutMs).pipe(
        Effect.raceFirst(Effect.forever(tellCredit(0, 0).pipe(Effect.andThen(Effect.sleep(HELLO_MS))))),
      );
      if (first === undefined) return yield* Effect.fail(stalled());
      const offer = yield* Effect.fromResult(first);
      if (offer._tag !== "KvOffer") return yield* Effect.fail(internal("kv_protocol", `chunk before offer on ${transferId}`));
      const layout = yield* Effect.fromResult(layoutOfOffer(offer));
      const r = new KvReassembly(offer, layout, yield* layerQueue, options.pool);
      reassembly = r;
      yield* Effect.forkScoped(receive(r));
      return r.incoming;
    });
  });

/** A chunk has landed in its slot and been checked (`intact`: it passed its checksum and is kept). */
interface ChunkLanded {
  readonly _tag: "ChunkLanded";
  readonly index: number;
  readonly intact: boolean;
}

/** The fewest chunks a receiver lets the sender have in flight. */
const MIN_WINDOW_CHUNKS = 4;
/** Chunk size the receiver's news queue is sized for; smaller chunks still land, and news dropped past it is made up by the silence. */
const MIN_CHUNK_BYTES = 64 * 1024;

/** The credit window in chunks of `chunkBytes` for a window of `windowBytes`. */
const windowChunks = (windowBytes: number, chunkBytes: number) =>
  Math.max(MIN_WINDOW_CHUNKS, Math.floor(windowBytes / Math.max(1, chunkBytes)));

/**
 * A receiver's default window. 16 MiB left the sender waiting on credits when the receiving process was slow
 * to be scheduled (0.64–0.76× raw NATS under load here, 0.87–0.88× with 32 MiB). Several transfers at once to
 * one worker share a CreditBudget instead, so together they stay under nats-server's max_pending.
 */
export const DEFAULT_WINDOW_BYTES = 32 * 1024 * 1024;

/** A decode worker's credit budget over all its NATS transfers: under nats-server's default max_pending (64 MiB). */
export const DEFAULT_CREDIT_BUDGET_BYTES = 48 * 1024 * 1024;

/** How often a receiver says it is listening while it waits for the offer. */
const HELLO_MS = 20;
/** How long a receiver waits in silence before it asks for missing chunks again. */
const GAP_MS = 50;
