// Emulated engines put KV on the wire in their vendor's native layout. Checked on real llama.cpp states of
// the test model: every element of the native buffer sits where the vendor layout puts it, the way back
// rebuilds the llama.cpp state byte for byte, a B200 (vLLM FlashAttention) prefill hands its KV to a
// Gaudi 3 (vLLM-Gaudi) decode through canonical and the tokens equal the monolithic run, fp8 on the wire
// stays within its rounding bound, and impossible moves are refused with both format names.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Effect, Exit, Scope } from "effect";
import type { Engine } from "../../src/engine/engine.ts";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { resolveModelPath } from "../../src/engine/model-resolution.ts";
import { makeEmulatedEngine } from "../../src/engine/emulated/emulated-engine.ts";
import { decodeEnvelope } from "../../src/engine/emulated/kv-envelope.ts";
import { canTranslateKv, translateKv } from "../../src/engine/emulated/kv-translation.ts";
import { llamaToNative, nativeToLlama } from "../../src/engine/emulated/llama-native.ts";
import { nativeFormatName, type NativeKvFormat } from "../../src/engine/emulated/native-kv-format.ts";
import { resolveProfile } from "../../src/engine/emulated/profile.ts";
import { vendorKvFamily } from "../../src/engine/emulated/vendor-kv-format.ts";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { blockCount, dtypeBytes, type KvDescriptor } from "../../src/kv/descriptor.ts";
import { roundingBound } from "../../src/kv/error-bound.ts";
import { KvFormatError } from "../../src/kv/kv-format-error.ts";
import { formatName } from "../../src/kv/llama-format.ts";
import { type LlamaSeqState, llamaSeqState, parseLlamaSeqState, setVTransposed, writeLlamaSeqState } from "../../src/kv/llama-state.ts";

const MODEL = "stories260K";
const KV_HEADS = 4; // stories260K: 4 KV heads × head dim 8, f16
const HEAD_DIM = 8;
const MAX_TOKENS = 48;
const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily wanted to play with her friend Tom in the park, but",
  "One day, a big bear",
];
const LONG = "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her friends. "
  .repeat(3);
const catalog = loadAcceleratorCatalog();
const native = (family: string, dtype: NativeKvFormat["dtype"] = "f16"): NativeKvFormat => ({ family, dtype, model: MODEL, kvHeads: KV_HEADS });

let scope: Scope.Closeable;
let engines: { fa8: Engine; noFa4: Engine };
/** Real exported states: flash attention on (8 sequences) and off (4 sequences), short and long prompts. */
const states: Array<{ name: string; bytes: Uint8Array; sequences: number; flashAttention: boolean }> = [];

const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Effect.scoped(effect));
const exportOf = (engine: Engine, prompt: string) =>
  run(Effect.gen(function* () {
    const { sequence } = yield* engine.prefill(yield* engine.tokenize(prompt));
    return yield* sequence.exportKv;
  }));

beforeAll(async () => {
  scope = Scope.makeUnsafe();
  const modelPath = resolveModelPath(undefined);
  engines = await Effect.runPromise(
    Scope.provide(scope)(Effect.all({
      fa8: makeLlamaCppEngine({ modelPath, sequences: 8, flashAttention: true }),
      noFa4: makeLlamaCppEngine({ modelPath, sequences: 4, flashAttention: false }),
    })),
  );
  for (const [name, engine, sequences, flashAttention] of [["fa", engines.fa8, 8, true], ["no-fa", engines.noFa4, 4, false]] as const) {
    for (const prompt of ["Once", PROMPTS[2]!, LONG]) states.push({ name: `${name}/${prompt.length}`, bytes: await exportOf(engine, prompt), sequences, flashAttention });
  }
});

afterAll(async () => {
  if (scope) await Effect.runPromise(Scope.close(scope, Exit.void));
});

/** The state as the importer rebuilds it: its cells in stream 0 under sequence id 0 (llama.cpp ignores both). */
const normalised = (state: LlamaSeqState): Uint8Array =>
  writeLlamaSeqState(llamaSeqState({
    ...state,
    caches: state.caches.map((cache) => {
      const occupied = cache.streams.find((s) => s.cells.length > 0)!;
      return {
        streams: cache.streams.map((s, index) =>
          index === 0
            ? { ...occupied, index, cells: occupied.cells.map((c) => ({ ...c, seqIds: [0] })) }
            : { index, cells: [], vTransposed: null, layers: [] }
        ),
      };
    }),
  }));

/** Byte offset of (layer, plane, token, head) in a per-layer, K-then-V-planes native buffer. */
const elementOffset = (d: KvDescriptor, layer: number, plane: 0 | 1, token: number, head: number) => {
  const el = dtypeBytes(d.dtype);
  const P = d.pageSize;
  const blockBytes = P * d.kvHeads * d.headDim * el;
  const block = ((layer * 2 + plane) * blockCount(d) + Math.floor(token / P)) * blockBytes;
  const inBlock = d.layout.tokenOrder === "NHD" ? ((token % P) * d.kvHeads + head) * d.headDim : (head * P + (token % P)) * d.headDim;
  return block + inBlock * el;
};

describe("llama.cpp state ⇄ vendor-native KV", () => {
  const chips = [
    ["nvidia-b200", "vllm-flash-attention", 16, "NHD"],
    ["amd-mi300x", "rocm-flash-attention", 16, "NHD"],
    ["intel-gaudi3-hl325l", "vllm-gaudi", 128, "NHD"],
    ["google-tpu-v6e", "canonical", 16, "HND"],
  ] as const;
  for (const [chip, family, pageSize, order] of chips) {
    it(`${chip}: ${family} blocks of ${pageSize} tokens (${order}), every element where the layout puts it, and back byte for byte`, () => {
      expect(vendorKvFamily(findAccelerator(catalog, chip))).toBe(family);
      for (const s of states) {
        const envelope = decodeEnvelope(llamaToNative(s.bytes, native(family)));
        const d = envelope.descriptor;
        const state = setVTransposed(parseLlamaSeqState(s.bytes), false);
        expect([d.format, d.pageSize, d.layout.tokenOrder, d.dtype, d.layers, d.kvHeads, d.headDim], s.name).toEqual([family, pageSize, order, "f16", 5, KV_HEADS, HEAD_DIM]);
        expect(d.tokens, s.name).toBe(state.cells.length);
        expect(envelope.llama.positions).toEqual(state.positions);
        expect(envelope.llama.tokens).toEqual(state.tokens);
        const headBytes = HEAD_DIM * 2;
        state.layers.forEach((layer, l) => {
          for (const [plane, rows] of [[0, layer.k.data], [1, layer.v.data]] as const) {
            for (let t = 0; t < d.tokens; t++) {
              for (let h = 0; h < KV_HEADS; h++) {
                const at = elementOffset(d, l, plane, t, h);
                const want = rows.subarray((t * KV_HEADS + h) * headBytes, (t * KV_HEADS + h + 1) * headBytes);
                if (!Buffer.from(envelope.kv.subarray(at, at + headBytes)).equals(want)) {
                  throw new Error(`${s.name}: layer ${l} plane ${plane} token ${t} head ${h} is not where ${family} puts it`);
                }
              }
            }
          }
        });
        const back = nativeToLlama(decodeEnvelope(llamaToNative(s.bytes, native(family))), { model: MODEL, sequences: s.sequences, flashAttention: s.flashAttention });
        expect(Buffer.from(back).equals(normalised(parseLlamaSeqState(s.bytes))), s.name).toBe(true);
      }
    });
  }

  it("rebuilds a state for another context: other stream count, other V layout", () => {
    const fa = states.find((s) => s.flashAttention)!;
    const back = parseLlamaSeqState(nativeToLlama(decodeEnvelope(llamaToNative(fa.bytes, native("vllm-gaudi"))), { model: MODEL, sequences: 4, flashAttention: false }));
    expect(back.nStream).toBe(4);
    expect(back.vTransposed).toBe(true);
    const original = parseLlamaSeqState(fa.bytes);
    expect(writeLlamaSeqState(setVTransposed(back, false)).length).toBe(normalised(original).length - 4 * 4); // 4 fewer empty streams
    back.layers.forEach((layer, l) => expect(Buffer.from(setVTransposed(back, false).layers[l]!.v.data).equals(original.layers[l]!.v.data)).toBe(true));
  });

  it("fp8 on the wire is lossy: not byte-exact, but every value within the fp8 rounding bound (plus f16 rounding on the way back)", () => {
    const f16 = (bits: number) => {
      const e = (bits >> 10) & 31;
      const m = bits & 1023;
      const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
      return bits & 0x8000 ? -v : v;
    };
    for (const s of states) {
      for (const dtype of ["fp8_e4m3fn", "fp8_e4m3fnuz"] as const) {
        const wire = llamaToNative(s.bytes, native("rocm-flash-attention", dtype));
        const { descriptor } = decodeEnvelope(wire);
        expect(descriptor.scales.kind).toBe("per_tensor");
        const scale = descriptor.scales.kind === "none" ? 1 : Math.max(...descriptor.scales.k, ...descriptor.scales.v);
        const bound = roundingBound(dtype, scale);
        const back = nativeToLlama(decodeEnvelope(wire), { model: MODEL, sequences: s.sequences, flashAttention: s.flashAttention });
        expect(Buffer.from(back).equals(normalised(parseLlamaSeqState(s.bytes))), `${s.name} ${dtype}`).toBe(false);
        const a = setVTransposed(parseLlamaSeqState(s.bytes), false).layers;
        const b = setVTransposed(parseLlamaSeqState(back), false).layers;
        let worst = 0;
        a.forEach((layer, l) => {
          for (const [x, y] of [[layer.k.data, b[l]!.k.data], [layer.v.data, b[l]!.v.data]]) {
            const xs = new Uint16Array(x!.slice().buffer);
            const ys = new Uint16Array(y!.slice().buffer);
            xs.forEach((bits, i) => {
              const want = f16(bits);
              const err = Math.abs(f16(ys[i]!) - want);
              // fp8 rounding, then f16 rounding of the dequantised value (half an ulp, or half the smallest subnormal)
              const allowed = Math.max(bound.relative * Math.abs(want), bound.absolute) + 2 ** -11 * (1 + bound.relative) * Math.abs(want) + 2 ** -25;
              worst = Math.max(worst, err / allowed);
            });
          }
        });
        expect(worst, `${s.name} ${dtype}`).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe("cross-vendor hand-off in the engines", () => {
  const emulated = (chip: string, real: Engine, kvDtype = "auto") =>
    Effect.runPromise(makeEmulatedEngine(real, {
      profile: resolveProfile(catalog, { chip, model: "llama-3-8b", tp: 1, dtype: "bf16", timeScale: 0, kvDtype }, 512),
      kvHeads: KV_HEADS,
    }));

  it("B200 prefill (vLLM FlashAttention, 8 sequences, flash attention) → Gaudi 3 decode (vLLM-Gaudi, 4 sequences, no flash attention): translated through canonical, tokens equal the monolithic run", async () => {
    const b200 = await emulated("nvidia-b200", engines.fa8);
    const gaudi = await emulated("intel-gaudi3-hl325l", engines.noFa4);
    expect(b200.info).toMatchObject({ vendor: "NVIDIA", device: "nvidia-b200", emulated: true, kvFormat: `vllm-flash-attention/f16/${MODEL}/kv_heads=4` });
    expect(gaudi.info).toMatchObject({ vendor: "Intel", device: "intel-gaudi3-hl325l", emulated: true, kvFormat: `vllm-gaudi/f16/${MODEL}/kv_heads=4` });
    expect(canTranslateKv(b200.info.kvFormat, gaudi.info.kvFormat)).toBe(true);
    for (const prompt of PROMPTS) {
      const tokens = await run(engines.fa8.tokenize(prompt));
      const reference = await run(engines.fa8.generate(tokens, MAX_TOKENS));
      expect(reference.length).toBeGreaterThanOrEqual(32);
      const handedOff = await run(Effect.gen(function* () {
        const { sequence, firstToken } = yield* b200.prefill(tokens);
        const wire = yield* sequence.exportKv;
        expect(decodeEnvelope(wire).descriptor.format).toBe("vllm-flash-attention");
        const moved = translateKv(wire, b200.info.kvFormat, gaudi.info.kvFormat);
        expect(decodeEnvelope(moved).descriptor).toMatchObject({ format: "vllm-gaudi", pageSize: 128 });
        const imported = yield* gaudi.importKv(moved);
        const out = [firstToken];
        yield* imported.decode(firstToken, MAX_TOKENS - 1, (t) => Effect.sync(() => void out.push(t)));
        return out;
      }));
      expect(handedOff, prompt).toEqual(reference);
      expect(await run(gaudi.generate(tokens, MAX_TOKENS)), prompt).toEqual(reference);
    }
  });

  it("an emulated engine imports only its own layout: the B200's KV is refused by the Gaudi 3 until translated", async () => {
    const b200 = await emulated("nvidia-b200", engines.fa8);
    const gaudi = await emulated("intel-gaudi3-hl325l", engines.noFa4);
    const wire = await exportOf(b200, PROMPTS[0]!);
    const fault = await run(gaudi.importKv(wire).pipe(Effect.match({ onSuccess: () => undefined, onFailure: (f) => f })));
    expect(fault).toMatchObject({ code: "state_load_rejected", vendor: "Intel" });
    expect(fault?.message).toContain(`expected ${gaudi.info.kvFormat}, the envelope holds ${b200.info.kvFormat}`);
    await run(gaudi.importKv(translateKv(wire, b200.info.kvFormat, gaudi.info.kvFormat)));
  });

  it("native KV reaches a plain llama.cpp engine and llama.cpp KV reaches an emulated one", async () => {
    const b200 = await emulated("nvidia-b200", engines.fa8);
    const plainNoFa4 = engines.noFa4.info.kvFormat;
    const tokens = await run(engines.fa8.tokenize(PROMPTS[0]!));
    const reference = await run(engines.fa8.generate(tokens, MAX_TOKENS));
    const decodeOn = (engine: Engine, bytes: Uint8Array, first: number) =>
      run(Effect.gen(function* () {
        const imported = yield* engine.importKv(bytes);
        const out = [first];
        yield* imported.decode(first, MAX_TOKENS - 1, (t) => Effect.sync(() => void out.push(t)));
        return out;
      }));
    const { wire, first } = await run(Effect.gen(function* () {
      const { sequence, firstToken } = yield* b200.prefill(tokens);
      return { wire: yield* sequence.exportKv, first: firstToken };
    }));
    expect(await decodeOn(engines.noFa4, translateKv(wire, b200.info.kvFormat, plainNoFa4), first)).toEqual(reference);
    const plain = await exportOf(engines.noFa4, PROMPTS[0]!);
    expect(await decodeOn(b200, translateKv(plain, plainNoFa4, b200.info.kvFormat), first)).toEqual(reference);
  });

  it("refuses another model, another KV head count, unknown formats and bytes that are not what the offer says, naming both formats", () => {
    const nvidia = nativeFormatName(native("vllm-flash-attention"));
    const gaudi = nativeFormatName(native("vllm-gaudi"));
    const otherModel = nativeFormatName({ ...native("vllm-gaudi"), model: "other" });
    const otherHeads = nativeFormatName({ ...native("vllm-gaudi"), kvHeads: 2 });
    const llama = formatName({ model: MODEL, sequences: 8, flashAttention: true });
    const llamaOther = formatName({ model: "other", sequences: 8, flashAttention: true });
    expect(canTranslateKv(nvidia, gaudi)).toBe(true);
    expect(canTranslateKv(llama, gaudi)).toBe(true);
    expect(canTranslateKv(gaudi, llama)).toBe(true);
    const wire = llamaToNative(states[0]!.bytes, native("vllm-flash-attention"));
    for (const [from, to, bytes] of [
      [nvidia, otherModel, wire],
      [nvidia, otherHeads, wire],
      [llamaOther, gaudi, states[0]!.bytes],
      ["mystery", gaudi, wire],
      [gaudi, nvidia, wire], // the offer says Gaudi, the bytes are vLLM FlashAttention
      [nvidia, gaudi, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])],
    ] as const) {
      expect(() => translateKv(bytes, from, to)).toThrow(KvFormatError);
      expect(() => translateKv(bytes, from, to)).toThrow(`KV ${from} → ${to}`);
    }
    for (const [from, to] of [[nvidia, otherModel], [nvidia, otherHeads], [llamaOther, gaudi], ["mystery", gaudi]]) expect(canTranslateKv(from!, to!)).toBe(false);
  });
});
