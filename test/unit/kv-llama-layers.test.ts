// llama.cpp's sequence state sent layer by layer: on real states the engine exports (flash attention on and
// off), splitting and reassembling gives back the same bytes, translating layer by layer gives exactly what
// translating the whole state gives, and a format with no translation path is refused before any layer.
import { Effect, Stream } from "effect";
import { beforeAll, describe, expect, it } from "vitest";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { resolveModelPath } from "../../src/engine/model-resolution.ts";
import { formatName } from "../../src/kv/llama-format.ts";
import { parseLlamaSeqState } from "../../src/kv/llama-state.ts";
import { translateState } from "../../src/kv/llama-translate.ts";
import type { IncomingKv, KvPayload } from "../../src/transport/kv-transfer.ts";
import { llamaStatePayload, receiveLlamaState } from "../../src/transport/llama-kv-layers.ts";

const TEXT = "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her friends.";
const formatOf = (flashAttention: boolean) => formatName({ model: "stories260K", sequences: 8, flashAttention });
const states = new Map<boolean, Uint8Array>();

beforeAll(async () => {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        for (const flashAttention of [true, false]) {
          const engine = yield* makeLlamaCppEngine({ modelPath: resolveModelPath(undefined), flashAttention, sequences: 8 });
          expect(engine.info.kvFormat).toBe(formatOf(flashAttention));
          const prompt = yield* engine.tokenize(TEXT);
          states.set(flashAttention, yield* Effect.scoped(Effect.flatMap(engine.prefill(prompt), ({ sequence }) => sequence.exportKv)));
        }
      }),
    ),
  );
}, 120_000);

/** What a receiver sees when every layer of `payload` arrives (the channels are tested on their own). */
const delivered = (payload: KvPayload) =>
  Stream.runCollect(payload.layers).pipe(
    Effect.map((layers): IncomingKv => ({
      transferId: "t1",
      format: payload.format,
      layerBytes: payload.layerBytes,
      payload: Buffer.concat(layers),
      release: () => {},
      layers: Stream.fromIterable(layers),
    })),
  );

const roundTrip = (state: Uint8Array, from: string, to: string) =>
  Effect.runPromise(llamaStatePayload(state, from).pipe(Effect.flatMap(delivered), Effect.flatMap((incoming) => receiveLlamaState(incoming, to))));

describe("llama.cpp state as layers", () => {
  it("is a head plus one layer per model layer (K then V), and reassembles byte-exact", async () => {
    for (const fa of [true, false]) {
      const state = states.get(fa)!;
      const parsed = parseLlamaSeqState(state);
      const payload = await Effect.runPromise(llamaStatePayload(state, formatOf(fa)));
      expect(payload.layerBytes.length).toBe(parsed.layers.length + 1);
      expect(payload.layerBytes.slice(1)).toEqual(parsed.layers.map((l) => l.k.data.length + l.v.data.length));
      const back = await roundTrip(state, formatOf(fa), formatOf(fa));
      expect(Buffer.compare(back, state)).toBe(0);
    }
  });

  it("translated layer by layer, equals the whole-state translation in both directions", async () => {
    for (const fa of [true, false]) {
      const state = states.get(fa)!;
      const back = await roundTrip(state, formatOf(fa), formatOf(!fa));
      const whole = translateState(state, formatOf(fa), formatOf(!fa));
      expect(Buffer.compare(back, state)).not.toBe(0);
      expect(Buffer.compare(back, whole)).toBe(0);
    }
  });

  it("refuses a format with no translation path before taking any layer, naming both formats", async () => {
    const other = formatName({ model: "another-model", sequences: 8, flashAttention: true });
    const incoming: IncomingKv = {
      transferId: "t1",
      format: other,
      layerBytes: [1],
      release: () => {},
      payload: new Uint8Array(1),
      layers: Stream.die("no layer may be taken"),
    };
    const error = await Effect.runPromise(Effect.flip(receiveLlamaState(incoming, formatOf(true))));
    expect(error.reason).toBe("kv_format_refused");
    expect(error.message).toContain(other);
    expect(error.message).toContain(formatOf(true));
  });
});
