// llama.cpp's sequence state as a layered KV payload. llama.cpp writes the whole state at once (a header, every
// layer's K, then every layer's V), so the sender parses it (views, no copy) and sends a small head — the
// state's structure without its tensor bytes, msgpack — and then one layer per model layer: that layer's K
// bytes followed by its V bytes. The receiver rebuilds each layer as it arrives, translating it at once when
// the formats differ (flash attention on one side only: V transposed or not), so layer i is translated while
// layer i+1 is in flight, and writes the state llama.cpp loads once every layer is in.
import { decode as msgpackDecode, encode as msgpackEncode } from "@msgpack/msgpack";
import { Effect, Result, Schema, Stream } from "effect";
import { KvFormatError } from "../kv/kv-format-error.ts";
import { planStateTranslation } from "../kv/llama-format.ts";
import {
  ggmlTypeName,
  type LlamaKvCacheState,
  type LlamaLayerState,
  llamaSeqState,
  parseLlamaSeqState,
  setVTransposed,
  writeLlamaSeqState,
} from "../kv/llama-state.ts";
import { internal, type TandemError, unavailable } from "../protocol/index.ts";
import { copyWithBlockChecksums } from "../kv/checksum/block-checksums.ts";
import { hashableBuffer } from "../kv/checksum/kv-hash.ts";
import type { IncomingKv, KvPayload } from "./kv-transfer.ts";

const Int = Schema.Int;
const LayerShape = Schema.Struct({
  k: Schema.Struct({ ggmlType: Int, rowBytes: Int }),
  v: Schema.Struct({ ggmlType: Int, transposed: Schema.Boolean, rowBytes: Int, elementBytes: Schema.NullOr(Int), embd: Schema.NullOr(Int) }),
});
const StreamShape = Schema.Struct({
  index: Int,
  cells: Schema.Array(Schema.Struct({ pos: Int, seqIds: Schema.Array(Int), ext: Schema.NullOr(Schema.Struct({ x: Int, y: Int, tok: Int })) })),
  vTransposed: Schema.NullOr(Schema.Boolean),
  layers: Schema.Array(LayerShape),
});
/** Layer 0 of the payload: everything in the state but the tensor bytes. */
const Head = Schema.Struct({
  magic: Int,
  version: Int,
  tokens: Schema.Array(Int),
  cellExt: Schema.Boolean,
  caches: Schema.Array(Schema.Struct({ streams: Schema.Array(StreamShape) })),
});
type Head = typeof Head.Type;
type StreamShape = typeof StreamShape.Type;
const decodeHead = Schema.decodeUnknownResult(Head);

const kBytes = (layer: typeof LayerShape.Type, cells: number) => layer.k.rowBytes * cells;
const vBytes = (layer: typeof LayerShape.Type, cells: number) =>
  layer.v.transposed ? (layer.v.embd ?? 0) * cells * (layer.v.elementBytes ?? 0) : layer.v.rowBytes * cells;

/** The occupied streams' layers in file order (the order `LlamaSeqState.layers` has), with their stream. */
const layersOf = (head: Head) =>
  head.caches.flatMap((cache) => cache.streams.filter((s) => s.cells.length > 0)).flatMap((stream) => stream.layers.map((shape) => ({ stream, shape })));

/** Splits an exported state into its head and one layer per model layer, each made when the sender takes it. */
export const llamaStatePayload = (state: Uint8Array, format: string): Effect.Effect<KvPayload, TandemError> =>
  Effect.try({
    try: () => parseLlamaSeqState(state),
    catch: (error) => internal("kv_export", `the exported KV state does not parse: ${error instanceof Error ? error.message : String(error)}`),
  }).pipe(
    Effect.map((parsed) => {
      const shapeOf = ({ k, v }: LlamaLayerState) => ({
        k: { ggmlType: k.ggmlType, rowBytes: k.rowBytes },
        v: { ggmlType: v.ggmlType, transposed: v.transposed, rowBytes: v.rowBytes, elementBytes: v.elementBytes, embd: v.embd },
      });
      const head = msgpackEncode({
        magic: parsed.magic,
        version: parsed.version,
        tokens: parsed.tokens,
        cellExt: parsed.cellExt,
        caches: parsed.caches.map((cache) => ({ streams: cache.streams.map((s) => ({ ...s, layers: s.layers.map(shapeOf) })) })),
      } satisfies Head);
      const layerBytes = parsed.layers.map(({ k, v }) => k.data.length + v.data.length);
      /** Block checksums of each payload layer (the head, layer 0, has none), made as the layer is copied. */
      const sums: Uint32Array[] = [];
      function* layers() {
        yield head;
        // One buffer for every layer, in memory the chunk checksum reads where it lies (no staging copy).
        const all = hashableBuffer(layerBytes.reduce((a, b) => a + b, 0));
        let at = 0;
        for (const [i, { k, v }] of parsed.layers.entries()) {
          const layer = all.subarray(at, at + k.data.length + v.data.length);
          // Each block is hashed right after it is copied, while in cache: the sender need not read it again.
          sums[1 + i] = copyWithBlockChecksums([k.data, v.data], layer);
          at += layer.length;
          yield layer;
        }
      }
      return {
        format,
        layerBytes: [head.length, ...layerBytes],
        layers: Stream.fromIterable(layers(), { chunkSize: 1 }),
        blockChecksums: (layer) => sums[layer],
      };
    }),
  );

const refused = (from: string, to: string, reason: string) => unavailable("kv_format_refused", new KvFormatError(from, to, reason).message);

/**
 * Receives a state sent by {@link llamaStatePayload} and returns it in format `to`, translating each layer as
 * it arrives; refuses (`kv_format_refused`, naming both formats) before any layer when no translation exists.
 */
export const receiveLlamaState = (incoming: IncomingKv, to: string): Effect.Effect<Uint8Array, TandemError> =>
  Effect.gen(function* () {
    const from = incoming.format;
    const plan = planStateTranslation(from, to);
    if (plan._tag === "Refused") return yield* Effect.fail(refused(from, to, plan.reason));
    const protocol = (message: string) => internal("kv_protocol", `KV state of ${incoming.transferId}: ${message}`);
    let head: Head | undefined;
    let units: ReadonlyArray<{ stream: StreamShape; shape: typeof LayerShape.Type }> = [];
    const layers: LlamaLayerState[] = [];

    const readHead = (bytes: Uint8Array): Result.Result<Head, TandemError> => {
      let raw: unknown;
      try {
        raw = msgpackDecode(bytes);
      } catch (error) {
        return Result.fail(protocol(`the head is not msgpack: ${String(error)}`));
      }
      return Result.mapError(decodeHead(raw), (issue) => protocol(`the head does not match its schema: ${issue.message}`));
    };
    const translate = (layer: LlamaLayerState, stream: StreamShape, { cellExt, magic, version }: Head) =>
      Effect.try({
        try: () => {
          if (plan._tag === "Identity") return layer;
          // A state of this one layer, so the layout change is exactly the one the whole-state path makes.
          const one = llamaSeqState({ magic, version, tokens: [], cellExt, caches: [{ streams: [{ ...stream, layers: [layer] }] }] });
          return setVTransposed(one, plan.toTransposed).layers[0]!;
        },
        catch: (error) => refused(from, to, error instanceof Error ? error.message : String(error)),
      });

    yield* Stream.runForEach(incoming.layers, (bytes) =>
      Effect.gen(function* () {
        if (head === undefined) {
          head = yield* Effect.fromResult(readHead(bytes));
          units = layersOf(head);
          const sizes = units.map(({ stream, shape }) => kBytes(shape, stream.cells.length) + vBytes(shape, stream.cells.length));
          if (sizes.length + 1 !== incoming.layerBytes.length || sizes.some((n, i) => n !== incoming.layerBytes[i + 1])) {
            return yield* Effect.fail(protocol(`the offer's ${incoming.layerBytes.length} layers do not match the head's ${sizes.length} + 1`));
          }
          return;
        }
        const { stream, shape } = units[layers.length]!;
        const split = kBytes(shape, stream.cells.length);
        const layer: LlamaLayerState = {
          k: { ...shape.k, dtype: ggmlTypeName(shape.k.ggmlType), data: bytes.subarray(0, split) },
          v: { ...shape.v, dtype: ggmlTypeName(shape.v.ggmlType), data: bytes.subarray(split) },
        };
        layers.push(yield* translate(layer, stream, head));
      }));
    if (head === undefined || layers.length !== units.length) return yield* Effect.fail(protocol(`${layers.length} of ${units.length} layers arrived`));

    let next = 0;
    const caches: LlamaKvCacheState[] = head.caches.map((cache) => ({
      streams: cache.streams.map((s) =>
        s.cells.length === 0
          ? { ...s, layers: [] }
          : { ...s, vTransposed: plan._tag === "TransposeV" ? plan.toTransposed : s.vTransposed, layers: layers.slice(next, (next += s.layers.length)) }
      ),
    }));
    const { magic, version, tokens, cellExt } = head;
    return yield* Effect.try({
      try: () => writeLlamaSeqState({ magic, version, tokens, cellExt, caches }),
      catch: (error) => refused(from, to, error instanceof Error ? error.message : String(error)),
    });
  });
