// The bulk KV channel: a direct TCP stream from sender to receiver with the NATS channel's framing facts — an
// offer with the layer table, then chunks with a checksum each and a manifest on each layer's last chunk, layers
// sent as the producer hands them over and handed on as they complete, a chunk that fails its checksum asked for
// again — but TCP's own flow control instead of credits. Each byte is copied once on arrival, straight to its
// place in the payload.
// Frame (both directions): "TKV4" | kind u8 | flags u8 | 2 zero bytes | index u32 | length u32 | checksum u32 |
// layer checksum u32 | payload. Kinds: 1 offer (payload: msgpack KvOffer), 2 chunk (flag 1: the layer checksum is
// set), 3 resend chunk `index` (receiver → sender), 4 done: every layer verified (receiver → sender).
import { createConnection, createServer, type Socket } from "node:net";
import { Deferred, Effect, FiberSet, Result, Scope, Stream } from "effect";
import { checksumBlocks, KV_CHECKSUM_BLOCK } from "../kv/checksum/block-checksums.ts";
import { kvChecksum } from "../kv/checksum/kv-hash.ts";
import { endsLayer, kvLayout, layerChunk } from "../kv/chunking.ts";
import { decodeMessageResult, encodeMessage, internal, KvOffer, type TandemError, unavailable } from "../protocol/index.ts";
import { freshPayloads, type KvPayloadPool } from "./kv-payload-pool.ts";
import { readInto } from "./socket-read-in-place.ts";
import { type IncomingKv, KvReassembly, type KvPayload, layerQueue, layoutOfOffer, offerFor, sealChunk } from "./kv-transfer.ts";

const MAGIC = 0x34564b54; // the bytes "TKV4" (a little-endian u32) (TKV3 hashed a chunk whole, TKV2 carried CRC-32s)
const HEADER_BYTES = 24;
const KIND_OFFER = 1;
const KIND_CHUNK = 2;
const KIND_RESEND = 3;
const KIND_DONE = 4;
const FLAG_LAYER_CHECKSUM = 1;

const frameHeader = (kind: number, index: number, length: number, checksum = 0, layerChecksum?: number) => {
  const h = new Uint8Array(HEADER_BYTES);
  const view = new DataView(h.buffer);
  view.setUint32(0, MAGIC, true);
  h[4] = kind;
  h[5] = layerChecksum === undefined ? 0 : FLAG_LAYER_CHECKSUM;
  view.setUint32(8, index, true);
  view.setUint32(12, length, true);
  view.setUint32(16, checksum, true);
  view.setUint32(20, layerChecksum ?? 0, true);
  return h;
};

interface Frame {
  readonly kind: number;
  readonly index: number;
  readonly length: number;
  readonly checksum: number;
  readonly layerChecksum: number | undefined;
}

const readHeader = (h: Uint8Array): Frame | undefined => {
  const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
  if (view.getUint32(0, true) !== MAGIC) return undefined;
  return {
    kind: h[4]!,
    index: view.getUint32(8, true),
    length: view.getUint32(12, true),
    checksum: view.getUint32(16, true),
    layerChecksum: h[5]! & FLAG_LAYER_CHECKSUM ? view.getUint32(20, true) : undefined,
  };
};

/** The receiver's frames (header only) as they arrive at the sender, taken off the front. */
class Inbound {
  private readonly pending: Uint8Array[] = [];
  bytes = 0;
  push(data: Uint8Array) {
    this.pending.push(data);
    this.bytes += data.length;
  }
  /** Takes the next `n` bytes. */
  take(n: number): Uint8Array {
    const into = new Uint8Array(n);
    for (let filled = 0; filled < n;) {
      const head = this.pending[0]!;
      const want = Math.min(n - filled, head.length);
      into.set(head.subarray(0, want), filled);
      filled += want;
      if (want === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(want);
    }
    this.bytes -= n;
    return into;
  }
}

export interface SendKvTcpOptions {
  readonly host: string;
  readonly port: number;
  readonly transferId: string;
  readonly payload: KvPayload;
  readonly chunkBytes: number;
  /** Give up when the receiver neither reads nor answers for this long. */
  readonly stallTimeoutMs: number;
}

/** Streams the payload to a receiver listening with {@link listenForKvTcp}; completes when it verified all. */
export const sendKvTcp = (options: SendKvTcpOptions): Effect.Effect<void, TandemError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { transferId, payload } = options;
      const layout = kvLayout(payload.layerBytes, options.chunkBytes);
      const checksums = new Uint32Array(layout.chunks);
      const manifests: Array<number | undefined> = [];
      const kept: Uint8Array[] = [];
      const socket = yield* Effect.acquireRelease(
        Effect.callback<Socket, TandemError>((resume) => {
          const socket = createConnection({ host: options.host, port: options.port });
          socket.once("connect", () => resume(Effect.succeed(socket)));
          socket.once("error", (e) => resume(Effect.fail(unavailable("kv_tcp", `TCP transfer ${transferId}: ${e.message}`))));
        }),
        (socket) => Effect.sync(() => socket.destroy()),
      );
      socket.setNoDelay(true);
      /** Succeeds when the receiver says done; fails when the connection does. */
      const ended = Deferred.makeUnsafe<void, TandemError>();
      const end = (error?: TandemError) => Deferred.doneUnsafe(ended, error ? Effect.fail(error) : Effect.void);
      const writeChunk = (index: number) => {
        const layer = layout.chunkLayers[index]!;
        const bytes = layerChunk(layout, kept[layer]!, index);
        socket.write(frameHeader(KIND_CHUNK, index, bytes.length, checksums[index]!, endsLayer(layout, index) ? manifests[layer] : undefined));
        socket.write(bytes);
      };
      socket.once("timeout", () => end(unavailable("kv_receiver_stalled", `TCP receiver of ${transferId} stalled`)));
      socket.on("error", (e) => end(unavailable("kv_tcp", `TCP transfer ${transferId}: ${e.message}`)));
      socket.once("close", () => end(unavailable("kv_tcp", `TCP receiver of ${transferId} closed before it verified the transfer`)));
      const inbound = new Inbound();
      socket.on("data", (data: Uint8Array) => {
        inbound.push(data);
        while (inbound.bytes >= HEADER_BYTES) {
          const frame = readHeader(inbound.take(HEADER_BYTES));
          if (frame?.kind === KIND_DONE) end();
          else if (frame?.kind === KIND_RESEND && frame.index < checksums.length && kept[layout.chunkLayers[frame.index]!]) writeChunk(frame.index);
          else if (frame === undefined) end(internal("kv_protocol", `TCP receiver of ${transferId} sent something that is not a Tandem KV frame`));
        }
      });
      const drained = Effect.callback<void>((resume) => {
        const onDrain = () => resume(Effect.void);
        socket.once("drain", onDrain);
        return Effect.sync(() => socket.off("drain", onDrain));
      });

      const offer = encodeMessage(KvOffer, offerFor(transferId, payload, layout));
      socket.write(frameHeader(KIND_OFFER, 0, offer.length));
      socket.write(offer);
      const sending = Stream.runForEach(payload.layers, (bytes) =>
        Effect.gen(function* () {
          const layer = kept.length;
          if (bytes.length !== layout.layerBytes[layer]) {
            return yield* Effect.fail(internal("kv_protocol", `layer ${layer} of ${transferId} is ${bytes.length} bytes; the offer says ${layout.layerBytes[layer]}`));
          }
          kept.push(bytes);
          const sums = payload.blockChecksums?.(layer);
          // The stall clock runs only while the sender waits on the receiver, not on its producer.
          socket.setTimeout(options.stallTimeoutMs);
          for (let index = layout.firstChunks[layer]!; index < layout.firstChunks[layer + 1]!; index++) {
            // The checksum is computed while the previous chunk drains, so the socket never waits on it.
            manifests[layer] = sealChunk(layout, checksums, index, layerChunk(layout, bytes, index), sums);
            // Backpressure: wait for the kernel buffer to drain rather than queue the whole payload in memory.
            if (socket.writableNeedDrain) yield* drained;
            writeChunk(index);
          }
          socket.setTimeout(0);
        }));
      yield* sending.pipe(Effect.raceFirst(Deferred.await(ended).pipe(Effect.andThen(Effect.never))));
      if (kept.length !== layout.layerBytes.length) {
        return yield* Effect.fail(internal("kv_protocol", `${transferId} produced ${kept.length} of its ${layout.layerBytes.length} layers`));
      }
      socket.setTimeout(options.stallTimeoutMs);
      yield* Deferred.await(ended);
    }),
  );

const decodeOffer = decodeMessageResult(KvOffer);

/**
 * Reads one transfer from an accepted socket (paused on connect): completes with the incoming transfer when
 * its offer has arrived; chunks then go straight to their place in the payload — on Node the kernel writes them
 * there, elsewhere they are copied from each read once — and layers out as they complete.
 */
const receiveFrom = (accepted: Socket, idleTimeoutMs: number, pool: KvPayloadPool) =>
  Effect.gen(function* () {
    const queue = yield* layerQueue;
    return yield* Effect.callback<IncomingKv, TandemError>((resume) => {
      let r: KvReassembly | undefined;
      /** The frame being read (undefined: its header is), where its bytes go, and how many are in. */
      let frame: Frame | undefined;
      const header = new Uint8Array(HEADER_BYTES);
      const discard = new Uint8Array(64 * 1024);
      let body: Uint8Array = header;
      let isDuplicate = false;
      let filled = 0;
      /** The chunk's block checksums, each made as soon as its block is in (still in cache), and how many are. */
      let blockSums = new Uint32Array(0);
      let hashedBlocks = 0;
      let finished = false;
      let socket = accepted;
      const fail = (error: TandemError) => {
        finished = true;
        socket.destroy();
        if (r === undefined) resume(Effect.fail(error));
        else r.fail(error);
      };
      const protocol = (message: string) => fail(internal("kv_protocol", message));

      /** Where the next bytes go; never empty. */
      const want = (): Uint8Array => {
        if (finished) return discard;
        if (frame === undefined) return header.subarray(filled);
        return isDuplicate ? discard.subarray(0, Math.min(discard.length, frame.length - filled)) : body.subarray(filled);
      };
      const hashArrivedBlocks = (length: number) => {
        while (hashedBlocks < blockSums.length) {
          const start = hashedBlocks * KV_CHECKSUM_BLOCK;
          const end = Math.min(start + KV_CHECKSUM_BLOCK, length);
          if (end > filled) return;
          blockSums[hashedBlocks++] = kvChecksum(body.subarray(start, end));
        }
      };
      const chunkArrived = ({ index, checksum, layerChecksum }: Frame) => {
        const committed = r!.commit(index, checksum, layerChecksum, blockSums);
        if (Result.isFailure(committed)) return fail(committed.failure);
        if (!committed.success) {
          const again = r!.askAgain([index]);
          if (Result.isFailure(again)) return fail(again.failure);
          socket.write(frameHeader(KIND_RESEND, index, 0));
        }
        if (r!.complete) {
          finished = true;
          socket.setTimeout(0);
          socket.end(frameHeader(KIND_DONE, 0, 0));
        }
      };
      const offerArrived = (bytes: Uint8Array) => {
        if (r !== undefined) return; // a repeated offer
        const decoded = decodeOffer(bytes);
        if (Result.isFailure(decoded)) return protocol(decoded.failure.message);
        const layout = layoutOfOffer(decoded.success);
        if (Result.isFailure(layout)) return protocol(layout.failure.message);
        r = new KvReassembly(decoded.success, layout.success, queue, pool);
        resume(Effect.succeed(r.incoming));
      };
      /** `n` more bytes are in at the start of what `want` named. */
      const advance = (n: number) => {
        filled += n;
        while (!finished) {
          if (frame === undefined) {
            if (filled < HEADER_BYTES) return;
            frame = readHeader(header);
            filled = 0;
            if (frame === undefined) return protocol("not a Tandem KV frame");
            if (frame.kind === KIND_CHUNK) {
              if (r === undefined) return protocol("chunk before offer");
              const verdict = r.accepts(frame.index, frame.length);
              if (verdict === "invalid") return protocol(`chunk ${frame.index} (${frame.length} bytes) is not in the offer`);
              isDuplicate = verdict !== "new"; // already here, or the transfer is over: read past it
              body = isDuplicate ? discard : r.slot(frame.index);
              blockSums = new Uint32Array(isDuplicate ? 0 : checksumBlocks(frame.length));
              hashedBlocks = 0;
            } else if (frame.kind === KIND_OFFER) {
              isDuplicate = false;
              body = new Uint8Array(frame.length);
            } else return protocol(`unexpected frame kind ${frame.kind}`);
          }
          if (frame.kind === KIND_CHUNK) hashArrivedBlocks(frame.length);
          if (filled < frame.length) return;
          const complete = frame;
          frame = undefined;
          filled = 0;
          if (complete.kind === KIND_OFFER) offerArrived(body);
          else if (!isDuplicate) chunkArrived(complete);
        }
      };

      socket = readInto(accepted, want, advance);
      socket.setNoDelay(true);
      socket.setTimeout(idleTimeoutMs);
      socket.once("timeout", () => fail(unavailable("kv_sender_stalled", `TCP sender stalled for ${idleTimeoutMs} ms`)));
      socket.on("error", (e) => fail(unavailable("kv_tcp", e.message)));
      socket.once("close", () => {
        if (!finished) fail(unavailable("kv_tcp", "the sender closed the connection before the transfer completed"));
      });
      return Effect.sync(() => socket.destroy());
    });
  });

/** A TCP server on an ephemeral port of `host` for the lifetime of the scope. */
const listen = (host: string, onSocket: (socket: Socket) => void) =>
  Effect.gen(function* () {
    const server = createServer({ noDelay: true, pauseOnConnect: true }, onSocket);
    yield* Effect.acquireRelease(
      Effect.callback<void, TandemError>((resume) => {
        server.once("error", (e) => resume(Effect.fail(unavailable("kv_tcp", `cannot listen for KV on ${host}: ${e.message}`))));
        server.listen(0, host, () => resume(Effect.void));
      }),
      () => Effect.sync(() => server.close()),
    );
    const address = server.address();
    return typeof address === "object" && address ? address.port : 0;
  });

/**
 * Listens on an ephemeral port of `host` for one sender (the port goes to the sender over NATS) and returns
 * it with the effect that completes when the sender's offer has arrived. The listener closes with the scope.
 */
export const listenForKvTcp = (host: string, idleTimeoutMs: number, pool: KvPayloadPool = freshPayloads) =>
  Effect.gen(function* () {
    let accept: ((socket: Socket) => void) | undefined;
    const accepted = new Promise<Socket>((r) => (accept = r));
    const port = yield* listen(host, (socket) => accept?.(socket));
    const receive = Effect.promise(() => accepted).pipe(
      Effect.timeoutOrElse({
        duration: idleTimeoutMs,
        orElse: () => Effect.fail(unavailable("kv_sender_stalled", `no TCP sender connected within ${idleTimeoutMs} ms`)),
      }),
      Effect.flatMap((socket) => receiveFrom(socket, idleTimeoutMs, pool)),
    );
    return { port, receive };
  }) satisfies Effect.Effect<{ port: number; receive: Effect.Effect<IncomingKv, TandemError> }, TandemError, Scope.Scope>;

/**
 * A worker's long-lived KV listener: every connection carries one transfer, and `onIncoming` gets each one
 * once its offer has arrived. A connection that fails before its offer is dropped here; its sender sees the
 * failure and aborts the transfer.
 */
export const serveKvTcp = <R>(
  host: string,
  idleTimeoutMs: number,
  onIncoming: (incoming: IncomingKv) => Effect.Effect<void, never, R>,
  pool: KvPayloadPool = freshPayloads,
) =>
  Effect.gen(function* () {
    const run = yield* FiberSet.makeRuntime<R>();
    return yield* listen(host, (socket) => {
      run(receiveFrom(socket, idleTimeoutMs, pool).pipe(Effect.flatMap(onIncoming), Effect.ignore));
    });
  });
