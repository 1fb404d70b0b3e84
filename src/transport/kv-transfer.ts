// What both KV channels (NATS subjects, direct TCP) share: the payload a sender streams (a layer table up
// front, then each layer as soon as it exists), the offer that declares it, and the receiver's reassembly —
// chunks written in place and checked against their checksum, each layer checked against its manifest and handed
// on as soon as it is whole, in order, so the consumer works on layer i while layer i+1 is in flight. A whole
// blob is the one-layer case of the same path.
import { Cause, Effect, Queue, Result, Stream } from "effect";
import { checksumBlocks, chunkChecksum, combineBlockChecksums, KV_CHECKSUM_BLOCK } from "../kv/checksum/block-checksums.ts";
import { chunkSpan, endsLayer, type KvLayout, kvLayout, layerManifest } from "../kv/chunking.ts";
import { internal, type KvOffer, type TandemError, unavailable } from "../protocol/index.ts";
import { freshPayloads, type KvPayloadPool } from "./kv-payload-pool.ts";

/** What a sender sends. `layers` must yield exactly `layerBytes.length` arrays of the declared sizes. */
export interface KvPayload {
  readonly format: string;
  readonly layerBytes: ReadonlyArray<number>;
  readonly layers: Stream.Stream<Uint8Array, TandemError>;
  /**
   * The checksums of a layer's blocks (src/kv/checksum/block-checksums.ts) when its producer made them while
   * writing it; asked once the layer has come out of `layers`. Without them the sender hashes the chunks itself.
   */
  readonly blockChecksums?: (layer: number) => Uint32Array | undefined;
}

/** A payload that exists all at once, sent as one layer (with its block checksums when the producer has them). */
export const wholeKv = (bytes: Uint8Array, format: string, blockChecksums?: Uint32Array): KvPayload => ({
  format,
  layerBytes: [bytes.length],
  layers: Stream.make(bytes),
  ...(blockChecksums === undefined ? {} : { blockChecksums: () => blockChecksums }),
});

/** A transfer whose offer has arrived; its layers follow. */
export interface IncomingKv {
  readonly transferId: string;
  /** The sender's KV format, from its offer; the receiver decides whether it must translate. */
  readonly format: string;
  readonly layerBytes: ReadonlyArray<number>;
  /** The payload, written as chunks arrive; complete once `layers` has ended. */
  readonly payload: Uint8Array;
  /** Each layer in order once all its chunks arrived and its manifest matched (a view into `payload`). */
  readonly layers: Stream.Stream<Uint8Array, TandemError>;
  /**
   * Hands the payload back to the receiver's pool for the next transfer. Call it once nothing reads the payload
   * or a layer of it any more; without the call the payload is garbage-collected as usual.
   */
  readonly release: () => void;
}

export interface ReceivedKv {
  readonly transferId: string;
  readonly bytes: Uint8Array;
  readonly format: string;
}

/** Waits for every layer and returns the whole payload. */
export const receiveWhole = (incoming: IncomingKv): Effect.Effect<ReceivedKv, TandemError> =>
  Stream.runDrain(incoming.layers).pipe(
    Effect.as({ transferId: incoming.transferId, bytes: incoming.payload, format: incoming.format }),
  );

export const offerFor = (transferId: string, payload: KvPayload, layout: KvLayout): Omit<KvOffer, "v"> => ({
  _tag: "KvOffer",
  transferId,
  totalBytes: layout.totalBytes,
  chunks: layout.chunks,
  chunkBytes: layout.chunkBytes,
  checksum: 0,
  format: payload.format,
  layers: payload.layerBytes,
});

/** The chunk layout an offer declares, or why it is inconsistent. */
export const layoutOfOffer = (offer: KvOffer): Result.Result<KvLayout, TandemError> => {
  const layout = kvLayout(offer.layers ?? [offer.totalBytes], Math.max(1, offer.chunkBytes));
  return layout.totalBytes === offer.totalBytes && layout.chunks === offer.chunks
    ? Result.succeed(layout)
    : Result.fail(internal("kv_protocol", `offer of ${offer.transferId} does not add up: its layers make ${layout.totalBytes} bytes in ${layout.chunks} chunks, it says ${offer.totalBytes} in ${offer.chunks}`));
};

/**
 * Records chunk `index`'s checksum in `checksums` — from the producer's `layerSums` (its layer's block checksums)
 * when the chunk's blocks are blocks of the layer, else from `bytes` — and on a layer's last chunk returns the
 * layer's manifest.
 */
export const sealChunk = (
  layout: KvLayout,
  checksums: Uint32Array,
  index: number,
  bytes: Uint8Array,
  layerSums?: Uint32Array,
): number | undefined => {
  const layer = layout.chunkLayers[index]!;
  const within = chunkSpan(layout, index).offset - layout.layerOffsets[layer]!;
  const layerLength = layout.layerBytes[layer]!;
  // The chunk's blocks are the layer's when it starts on a block boundary and ends on one or at the layer's end.
  const aligned = within % KV_CHECKSUM_BLOCK === 0 && (bytes.length % KV_CHECKSUM_BLOCK === 0 || within + bytes.length === layerLength);
  const usable = aligned && layerSums !== undefined && layerSums.length === checksumBlocks(layerLength);
  if (usable) {
    const first = within / KV_CHECKSUM_BLOCK;
    checksums[index] = combineBlockChecksums(layerSums.subarray(first, first + checksumBlocks(bytes.length)));
  } else checksums[index] = chunkChecksum(bytes);
  return endsLayer(layout, index) ? layerManifest(layout, checksums, layer) : undefined;
};

export type LayerQueue = Queue.Queue<Uint8Array, TandemError | Cause.Done>;
export const layerQueue: Effect.Effect<LayerQueue> = Queue.unbounded<Uint8Array, TandemError | Cause.Done>();

/** How many times a receiver asks for the same chunk before it gives up on the transfer. */
export const MAX_RESENDS = 5;

/**
 * One transfer's receiving side, whichever channel feeds it. The channel asks `accepts` about a chunk, writes
 * its bytes into `slot`, then `commit`s it; completed layers go out on `incoming.layers`.
 */
export class KvReassembly {
  readonly payload: Uint8Array;
  /** Every chunk below this index has arrived and passed its checksum. */
  contiguous = 0;
  /** The highest chunk index seen (even corrupt): chunks below it were certainly sent. */
  private highest = -1;
  private released = 0;
  /** Failed, or its payload given back: no chunk may land any more. */
  private closed = false;
  private readonly checksums: Uint32Array;
  private readonly arrived: Uint8Array;
  private readonly missing: Int32Array;
  private readonly manifests: Float64Array;
  private readonly requests: Uint8Array;
  readonly incoming: IncomingKv;

  /** `queue` (from {@link layerQueue}) carries the completed layers out; the payload comes from `pool`. */
  constructor(readonly offer: KvOffer, readonly layout: KvLayout, private readonly queue: LayerQueue, pool: KvPayloadPool = freshPayloads) {
    this.payload = pool.acquire(layout.totalBytes);
    let released = false;
    this.checksums = new Uint32Array(layout.chunks);
    this.arrived = new Uint8Array(layout.chunks);
    this.requests = new Uint8Array(layout.chunks);
    this.missing = Int32Array.from(layout.layerBytes, (_, layer) => layout.firstChunks[layer + 1]! - layout.firstChunks[layer]!);
    this.manifests = new Float64Array(layout.layerBytes.length).fill(Number.NaN);
    this.incoming = {
      transferId: offer.transferId,
      format: offer.format,
      layerBytes: layout.layerBytes,
      payload: this.payload,
      layers: Stream.fromQueue(this.queue),
      release: () => {
        this.closed = true;
        if (!released) pool.release(this.payload);
        released = true;
      },
    };
    this.release();
  }

  get complete() {
    return this.released === this.layout.layerBytes.length;
  }

  /** Whether chunk `index` of `length` bytes is wanted ("new"), already here, outside the offer, or too late. */
  accepts(index: number, length: number): "new" | "duplicate" | "invalid" | "closed" {
    if (this.closed) return "closed";
    if (!Number.isInteger(index) || index < 0 || index >= this.layout.chunks || chunkSpan(this.layout, index).length !== length) return "invalid";
    return this.arrived[index] ? "duplicate" : "new";
  }

  /** Where chunk `index` goes in the payload. */
  slot(index: number): Uint8Array {
    const { offset, length } = chunkSpan(this.layout, index);
    return this.payload.subarray(offset, offset + length);
  }

  /**
   * Checks the bytes written to `slot(index)`: false when they fail their checksum (ask again), true when kept.
   * `blockSums`: the checksums of the slot's blocks, when the channel hashed them as they landed. Fails when a
   * completed layer does not match its manifest.
   */
  commit(index: number, checksum: number, layerChecksum: number | undefined, blockSums?: Uint32Array): Result.Result<boolean, TandemError> {
    this.highest = Math.max(this.highest, index);
    const actual = blockSums === undefined ? chunkChecksum(this.slot(index)) : combineBlockChecksums(blockSums);
    if (actual !== checksum) return Result.succeed(false);
    this.arrived[index] = 1;
    this.checksums[index] = checksum;
    const layer = this.layout.chunkLayers[index]!;
    if (layerChecksum !== undefined && endsLayer(this.layout, index)) this.manifests[layer] = layerChecksum;
    this.missing[layer]!--;
    while (this.contiguous < this.layout.chunks && this.arrived[this.contiguous]) this.contiguous++;
    return this.release();
  }

  /**
   * Records that `chunks` are asked for again and returns them, or fails once a chunk that was certainly sent
   * (a later one arrived, or it arrived corrupt) has been asked for MAX_RESENDS times.
   */
  askAgain(chunks: ReadonlyArray<number>): Result.Result<ReadonlyArray<number>, TandemError> {
    for (const index of chunks) {
      if (index > this.highest) continue; // maybe not sent yet: asking costs nothing, so it does not count
      if (++this.requests[index]! > MAX_RESENDS) {
        return Result.fail(unavailable("kv_chunk_lost", `chunk ${index} of ${this.offer.transferId} did not arrive intact after ${MAX_RESENDS} resends`));
      }
    }
    return Result.succeed(chunks);
  }

  /**
   * What to ask for after a silence: the chunks missing below the highest one seen (certainly sent, at most
   * `limit`), or else the first chunk still missing below `upTo` alone — it may be lost, or merely not sent yet,
   * so a silence while the producer is slow costs one chunk's resend at most.
   */
  missingAfterSilence(upTo: number, limit: number): number[] {
    const out: number[] = [];
    for (let index = this.contiguous; index < this.highest && out.length < limit; index++) {
      if (!this.arrived[index]) out.push(index);
    }
    if (out.length === 0 && this.contiguous < Math.min(upTo, this.layout.chunks)) out.push(this.contiguous);
    return out;
  }

  /** Ends the layer stream with `error` (a no-op once it has ended). */
  fail(error: TandemError) {
    this.closed = true;
    Queue.failCauseUnsafe(this.queue, Cause.fail(error));
  }

  /** Hands on every layer that is now whole, in order; ends the stream after the last. */
  private release(): Result.Result<boolean, TandemError> {
    const layers = this.layout.layerBytes.length;
    while (this.released < layers && this.missing[this.released] === 0) {
      const layer = this.released;
      if (this.manifests[layer] !== layerManifest(this.layout, this.checksums, layer)) {
        const error = internal("kv_checksum_mismatch", `layer ${layer} of ${this.offer.transferId} does not match its manifest`);
        this.fail(error);
        return Result.fail(error);
      }
      const offset = this.layout.layerOffsets[layer]!;
      Queue.offerUnsafe(this.queue, this.payload.subarray(offset, offset + this.layout.layerBytes[layer]!));
      this.released++;
    }
    if (this.released === layers) Queue.endUnsafe(this.queue);
    return Result.succeed(true);
  }
}
