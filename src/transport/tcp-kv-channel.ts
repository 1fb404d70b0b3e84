// The bulk KV channel: a direct TCP stream from sender to receiver, with the same framing facts as the NATS
// channel (an offer, then chunks with a CRC-32 each, a manifest CRC over the chunk CRCs) but TCP's own flow
// control instead of credits, and each byte copied once on arrival, straight to its place in the payload.
// Frame: "TKV1" | kind u8 (1 offer, 2 chunk) | 3 zero bytes | index u32 | length u32 | crc32 u32 | payload.
import { createConnection, createServer, type Socket } from "node:net";
import { Effect, FiberSet, Result, Scope } from "effect";
import { crc32 } from "../kv/checksum.ts";
import { chunkAt, chunkCount } from "../kv/chunking.ts";
import { decodeMessageResult, encodeMessage, internal, KvOffer, type TandemError, unavailable } from "../protocol/index.ts";
import type { ReceivedKv } from "./nats-kv-channel.ts";

const MAGIC = 0x314b5654; // "TKV1" little-endian
const HEADER_BYTES = 20;
const KIND_OFFER = 1;
const KIND_CHUNK = 2;
const ACK = 0x06;

const header = (kind: number, index: number, length: number, checksum: number) => {
  const h = new Uint8Array(HEADER_BYTES);
  const view = new DataView(h.buffer);
  view.setUint32(0, MAGIC, true);
  h[4] = kind;
  view.setUint32(8, index, true);
  view.setUint32(12, length, true);
  view.setUint32(16, checksum, true);
  return h;
};

const manifest = (checksums: Uint32Array) => crc32(new Uint8Array(checksums.buffer, checksums.byteOffset, checksums.byteLength));

export interface SendKvTcpOptions {
  readonly host: string;
  readonly port: number;
  readonly transferId: string;
  readonly bytes: Uint8Array;
  readonly chunkBytes: number;
  readonly format: string;
  /** Give up when the receiver neither reads nor acknowledges for this long. */
  readonly stallTimeoutMs: number;
}

/** Streams `bytes` to a receiver listening with {@link listenForKvTcp}; completes when it acknowledged. */
export const sendKvTcp = (options: SendKvTcpOptions): Effect.Effect<void, TandemError> =>
  Effect.callback<void, TandemError>((resume) => {
    const { bytes, chunkBytes, transferId } = options;
    const chunks = chunkCount(bytes.length, chunkBytes);
    const checksums = new Uint32Array(chunks);
    for (let i = 0; i < chunks; i++) checksums[i] = crc32(chunkAt(bytes, chunkBytes, i));
    const socket = createConnection({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    socket.setTimeout(options.stallTimeoutMs);
    let settled = false;
    const settle = (effect: Effect.Effect<void, TandemError>) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resume(effect);
    };
    socket.once("timeout", () => settle(Effect.fail(unavailable("kv_receiver_stalled", `TCP receiver of ${transferId} stalled`))));
    socket.once("error", (e) => settle(Effect.fail(unavailable("kv_tcp", `TCP transfer ${transferId}: ${e.message}`))));
    socket.once("close", () => settle(Effect.fail(unavailable("kv_tcp", `TCP receiver of ${transferId} closed without an ack`))));
    socket.on("data", (data: Uint8Array) => {
      if (data[0] === ACK) settle(Effect.void);
    });
    socket.once("connect", async () => {
      const offer = encodeMessage(KvOffer, {
        _tag: "KvOffer",
        transferId,
        totalBytes: bytes.length,
        chunks,
        chunkBytes,
        checksum: manifest(checksums),
        format: options.format,
      });
      socket.write(header(KIND_OFFER, 0, offer.length, 0));
      socket.write(offer);
      for (let i = 0; i < chunks && !settled; i++) {
        const chunk = chunkAt(bytes, chunkBytes, i);
        socket.write(header(KIND_CHUNK, i, chunk.length, checksums[i]!));
        // Backpressure: wait for the kernel buffer to drain rather than queue the whole payload in memory.
        if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
      }
    });
    return Effect.sync(() => settle(Effect.void));
  });

const decodeOffer = decodeMessageResult(KvOffer);

/** Reassembles one transfer from a connected socket, writing each chunk straight into the payload. */
const receiveFrom = (socket: Socket, idleTimeoutMs: number) =>
  Effect.callback<ReceivedKv, TandemError>((resume) => {
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs);
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let offer: KvOffer | undefined;
    let payload = new Uint8Array(0);
    let checksums = new Uint32Array(0);
    let received = 0;
    let frame: { kind: number; index: number; length: number; crc: number } | undefined;
    let settled = false;
    const settle = (effect: Effect.Effect<ReceivedKv, TandemError>) => {
      if (settled) return;
      settled = true;
      resume(effect);
    };
    /** Takes `n` bytes off the front of what has arrived, into `into` at `offset` (or a fresh buffer). */
    const take = (n: number, into?: Uint8Array, offset = 0) => {
      const out = into ?? new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const head = pending[0]!;
        const want = Math.min(n - filled, head.length);
        out.set(head.subarray(0, want), offset + filled);
        filled += want;
        if (want === head.length) pending.shift();
        else pending[0] = head.subarray(want);
      }
      pendingBytes -= n;
      return into ? out.subarray(offset, offset + n) : out;
    };
    const fail = (reason: string, message: string) => {
      socket.destroy();
      settle(Effect.fail(reason === "kv_protocol" || reason === "kv_checksum_mismatch" ? internal(reason, message) : unavailable(reason, message)));
    };
    socket.once("timeout", () => fail("kv_sender_stalled", `TCP sender stalled for ${idleTimeoutMs} ms`));
    socket.once("error", (e) => fail("kv_tcp", e.message));
    socket.once("close", () => fail("kv_tcp", "the sender closed the connection before the transfer completed"));
    socket.on("data", (data: Uint8Array) => {
      pending.push(data);
      pendingBytes += data.length;
      while (!settled) {
        if (frame === undefined) {
          if (pendingBytes < HEADER_BYTES) return;
          const h = take(HEADER_BYTES);
          const view = new DataView(h.buffer, h.byteOffset, h.byteLength);
          if (view.getUint32(0, true) !== MAGIC) return fail("kv_protocol", "not a Tandem KV frame");
          frame = { kind: h[4]!, index: view.getUint32(8, true), length: view.getUint32(12, true), crc: view.getUint32(16, true) };
        }
        if (pendingBytes < frame.length) return;
        if (frame.kind === KIND_OFFER) {
          const decoded = decodeOffer(take(frame.length));
          if (Result.isFailure(decoded)) return fail("kv_protocol", decoded.failure.message);
          offer = decoded.success;
          payload = new Uint8Array(offer.totalBytes);
          checksums = new Uint32Array(offer.chunks);
        } else {
          if (offer === undefined) return fail("kv_protocol", "chunk before offer");
          const place = take(frame.length, payload, frame.index * offer.chunkBytes);
          if (crc32(place) !== frame.crc) return fail("kv_checksum_mismatch", `chunk ${frame.index} is corrupt`);
          checksums[frame.index] = frame.crc;
          received++;
        }
        frame = undefined;
        if (offer !== undefined && received === offer.chunks) {
          if (manifest(checksums) !== offer.checksum) return fail("kv_checksum_mismatch", "the chunks do not match the offer's manifest");
          socket.write(new Uint8Array([ACK]));
          socket.end();
          return settle(Effect.succeed({ transferId: offer.transferId, bytes: payload, format: offer.format }));
        }
      }
    });
    return Effect.sync(() => socket.destroy());
  });

/** A TCP server on an ephemeral port of `host` for the lifetime of the scope. */
const listen = (host: string, onSocket: (socket: Socket) => void) =>
  Effect.gen(function* () {
    const server = createServer({ noDelay: true }, onSocket);
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
 * it with the effect that completes with the verified payload. The listener closes with the scope.
 */
export const listenForKvTcp = (host: string, idleTimeoutMs: number) =>
  Effect.gen(function* () {
    let accept: ((socket: Socket) => void) | undefined;
    const accepted = new Promise<Socket>((r) => (accept = r));
    const port = yield* listen(host, (socket) => accept?.(socket));
    const receive = Effect.promise(() => accepted).pipe(
      Effect.timeoutOrElse({
        duration: idleTimeoutMs,
        orElse: () => Effect.fail(unavailable("kv_sender_stalled", `no TCP sender connected within ${idleTimeoutMs} ms`)),
      }),
      Effect.flatMap((socket) => receiveFrom(socket, idleTimeoutMs)),
    );
    return { port, receive };
  }) satisfies Effect.Effect<{ port: number; receive: Effect.Effect<ReceivedKv, TandemError> }, TandemError, Scope.Scope>;

/**
 * A worker's long-lived KV listener: every connection carries one transfer, and `onReceived` gets each
 * verified payload. A failed connection is dropped here; its sender sees the failure and aborts the transfer.
 */
export const serveKvTcp = <R>(host: string, idleTimeoutMs: number, onReceived: (received: ReceivedKv) => Effect.Effect<void, never, R>) =>
  Effect.gen(function* () {
    const run = yield* FiberSet.makeRuntime<R>();
    return yield* listen(host, (socket) => {
      run(receiveFrom(socket, idleTimeoutMs).pipe(Effect.flatMap(onReceived), Effect.ignore));
    });
  });
