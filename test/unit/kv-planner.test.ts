import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type KvDescriptor, type KvScales, nativeByteLength, scaledScales } from "../../src/kv/descriptor.ts";
import { FNUZ_TO_FN_BOUND } from "../../src/kv/error-bound.ts";
import { KvFormatError } from "../../src/kv/kv-format-error.ts";
import { nativeFormats } from "../../src/kv/native-formats.ts";
import { planTranslation, translate } from "../../src/kv/planner.ts";

const shapeArb = fc.record({
  model: fc.constantFrom("llama-3-8b", "qwen-2-7b"),
  layers: fc.integer({ min: 1, max: 3 }),
  kvHeads: fc.integer({ min: 1, max: 4 }),
  headDim: fc.integer({ min: 1, max: 16 }),
  tokens: fc.integer({ min: 0, max: 70 }),
});
const presetArb = fc.constantFrom(...Object.values(nativeFormats));

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

const perHead = (d: { layers: number; kvHeads: number }, seed: number): KvScales => {
  const n = d.layers * d.kvHeads;
  const at = (i: number) => Math.fround(2 ** (((seed + i * 7) % 9) - 4) * (1 + ((seed + i) % 5) / 8));
  return { kind: "per_head", k: Array.from({ length: n }, (_, i) => at(i)), v: Array.from({ length: n }, (_, i) => at(i + n)) };
};

/** bf16 codes of moderate values (|x| in about 2^-6..2^6) so fp8 round trips stay in range. */
const bf16Bytes = (n: number, seed: number) => {
  const out = new Uint16Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x & 0x807f) | ((121 + ((x >>> 8) % 13)) << 7);
  }
  return new Uint8Array(out.buffer);
};

describe("KV translation planner", () => {
  it("refuses a different model, layer count, KV heads, head dim or token count, naming both formats; translate then throws KvFormatError", () => {
    fc.assert(
      fc.property(shapeArb, presetArb, presetArb, fc.constantFrom("model", "layers", "kvHeads", "headDim", "tokens"), (shape, a, b, field) => {
        const from = a(shape);
        const to = b({ ...shape, [field]: field === "model" ? `${shape.model}-other` : shape[field] + 1 });
        const plan = planTranslation(from, to);
        expect(plan).toMatchObject({ refused: true, from: `${from.format}/${from.dtype}`, to: `${to.format}/${to.dtype}` });
        if (!plan.refused) return;
        expect(plan.reason).toContain(field === "model" ? "model fingerprint" : field);
        const error = thrown(() => translate(plan, new Uint8Array(nativeByteLength(from))));
        expect(error).toBeInstanceOf(KvFormatError);
        expect(error).toMatchObject({ from: plan.from, to: plan.to, reason: plan.reason });
        expect((error as Error).message).toContain(plan.from);
        expect((error as Error).message).toContain(plan.to);
      }),
    );
  });

  it("refuses fp8 → f16 when the fp8 side carries no scales, and f16 → fp8 when the target has none", () => {
    const shape = { model: "m", layers: 2, kvHeads: 2, headDim: 8, tokens: 20 };
    const rocm = nativeFormats.rocm(shape);
    const fa16 = nativeFormats.vllmFlashAttention({ ...shape, dtype: "f16" });
    expect(planTranslation(rocm, fa16)).toMatchObject({ refused: true, from: "rocm-flash-attention/fp8_e4m3fnuz", to: "vllm-flash-attention/f16" });
    expect(planTranslation(fa16, rocm)).toMatchObject({ refused: true, reason: expect.stringContaining("no scales") });
    const scaled = nativeFormats.rocm({ ...shape, scales: { kind: "per_tensor", k: [1, 2], v: [3, 4] } });
    expect(planTranslation(scaled, fa16)).toMatchObject({ refused: false, exact: false });
  });

  it("e4m3fn → e4m3fnuz with doubled scales is an exact plan that keeps the bytes except 0x80 and 0x7F/0xFF; the reverse states its 1/15 bound", () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 0, max: 1000 }), fc.integer(), (shape, scaleSeed, seed) => {
        const scales = perHead(shape, scaleSeed);
        const fn = nativeFormats.vllmFlashAttention({ ...shape, dtype: "fp8_e4m3fn", scales });
        const fnuz = nativeFormats.rocm({ ...shape, scales: scaledScales(scales, 2) });
        const plan = planTranslation(fn, fnuz);
        expect(plan).toMatchObject({ refused: false, exact: true });
        const bytes = bf16Bytes(Math.ceil(nativeByteLength(fn) / 2), seed).subarray(0, nativeByteLength(fn));
        const out = translate(plan, bytes).bytes;
        // Same layout (FlashAttention), so byte i maps to byte i; block padding comes out zero.
        const { tokens, kvHeads, headDim } = shape;
        const valid = tokens * kvHeads * headDim;
        const block = Math.ceil(tokens / 16) * 16 * kvHeads * headDim;
        out.forEach((c, i) => {
          const src = (i % block) < valid ? bytes[i]! : 0;
          expect(c).toBe(src === 0x80 ? 0 : (src & 0x7f) === 0x7f ? 0x80 : src);
        });
        const back = planTranslation(fnuz, fn);
        expect(back).toMatchObject({ refused: false, exact: false, steps: [{}, { kind: "convert", bound: FNUZ_TO_FN_BOUND }, {}] });
      }),
      { numRuns: 40 },
    );
  });

  it("same-dtype plans and widening to f32 are exact; bf16 → per-head fp8 across layouts commutes with the same conversion in place and stays within the plan's bound", () => {
    fc.assert(
      fc.property(shapeArb, presetArb, fc.integer({ min: 0, max: 1000 }), fc.integer(), (shape, to, scaleSeed, seed) => {
        const fa = nativeFormats.vllmFlashAttention(shape);
        const bytes = bf16Bytes(nativeByteLength(fa) / 2, seed);
        const widened = planTranslation(fa, to({ ...shape, dtype: "f32" }));
        expect(widened).toMatchObject({ refused: false, exact: true });
        const fp8 = (make: (s: typeof shape & { dtype: "fp8_e4m3fn"; scales: KvScales }) => KvDescriptor) =>
          make({ ...shape, dtype: "fp8_e4m3fn", scales: perHead(shape, scaleSeed) });
        const direct = planTranslation(fa, fp8(nativeFormats.vllmFlashAttention));
        const across = planTranslation(fa, fp8(to));
        if (direct.refused || across.refused) throw new Error("planned translation refused");
        expect(across.exact).toBe(false);
        const inPlace = translate(direct, bytes).bytes;
        const viaOther = translate(planTranslation(across.to, direct.to), translate(across, bytes).bytes).bytes;
        expect(viaOther).toEqual(inPlace);
        // Values: FlashAttention element index → (layer, head) picks the scale.
        const bound = direct.steps.find((s) => s.kind === "convert")!.bound!;
        const src = new Uint16Array(bytes.buffer);
        const f32 = new Float32Array(1);
        const u32 = new Uint32Array(f32.buffer);
        const scales = direct.to.scales as Extract<KvScales, { kind: "per_head" }>;
        const perLayer = inPlace.length / shape.layers;
        inPlace.forEach((code, i) => {
          u32[0] = src[i]! << 16;
          const layer = Math.floor(i / perLayer);
          const plane = Math.floor((i % perLayer) / (perLayer / 2));
          const head = Math.floor(i / shape.headDim) % shape.kvHeads;
          const scale = (plane === 0 ? scales.k : scales.v)[layer * shape.kvHeads + head]!;
          const e = (code & 0x7f) >>> 3;
          const m = code & 7;
          const y = (code & 0x80 ? -1 : 1) * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7)) * scale;
          const x = (i % (perLayer / 2)) < shape.tokens * shape.kvHeads * shape.headDim ? f32[0]! : 0;
          const clipped = Math.max(-448 * scale, Math.min(448 * scale, x));
          expect(Math.abs(y - clipped)).toBeLessThanOrEqual(Math.max(bound.relative * Math.abs(clipped), bound.absolute) * (1 + 1e-12));
        });
      }),
      { numRuns: 40 },
    );
  });

  it("bf16 → f16 translation reports how many values it saturated and how many fell below f16's normal range", () => {
    const shape = { model: "m", layers: 1, kvHeads: 1, headDim: 4, tokens: 1 };
    const from = nativeFormats.sglang(shape);
    const plan = planTranslation(from, nativeFormats.sglang({ ...shape, dtype: "f16" }));
    // K = [1e5, -1e6, 1e-6, 1], V = [0, 2^-30, inf, NaN] as bf16.
    const bits = new Uint16Array([0x47c3, 0xc974, 0x3586, 0x3f80, 0x0000, 0x3080, 0x7f80, 0x7fc0]);
    const { bytes, report } = translate(plan, new Uint8Array(bits.buffer));
    expect(report).toEqual({ saturated: 2, belowNormal: 2 });
    expect([...new Uint16Array(bytes.buffer)]).toEqual([0x7bff, 0xfbff, 0x0011, 0x3c00, 0x0000, 0x0000, 0x7c00, 0x7e00]);
  });

  it("identical descriptors plan a single exact copy", () => {
    const d = nativeFormats.tensorrtLlm({ model: "m", layers: 2, kvHeads: 2, headDim: 4, tokens: 33 });
    expect(planTranslation(d, d)).toMatchObject({ refused: false, exact: true, steps: [{ kind: "copy" }] });
  });
});
