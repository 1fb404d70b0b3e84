import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalDescriptor } from "../../src/kv/canonical.ts";
import { fromCanonical, layerFromCanonical, layerToCanonical, toCanonical } from "../../src/kv/codec.ts";
import { dtypeBytes, type KvDescriptor, type KvDtype, nativeByteLength } from "../../src/kv/descriptor.ts";
import { KvFormatError } from "../../src/kv/kv-format-error.ts";
import { nativeFormats } from "../../src/kv/native-formats.ts";
import { planTranslation, translate } from "../../src/kv/planner.ts";

// Each layout is written out here from the vendor's tensor shape, independently of the codecs, as the
// element index of (layer l, plane c = 0 K / 1 V, token t, head h, dim d).
interface Dims {
  readonly L: number;
  readonly H: number;
  readonly D: number;
  readonly T: number;
}
type Reference = (x: Dims, l: number, c: number, t: number, h: number, d: number) => number;

const split = (t: number, P: number) => [Math.floor(t / P), t % P] as const;
const nb = (x: Dims, P: number) => Math.ceil(x.T / P);

/** vLLM FlashAttention / ROCm, per layer (2, blocks, 16, H, D). */
const flashAttention: Reference = (x, l, c, t, h, d) => {
  const [b, s] = split(t, 16);
  return l * 2 * nb(x, 16) * 16 * x.H * x.D + (((c * nb(x, 16) + b) * 16 + s) * x.H + h) * x.D + d;
};
/** vLLM FlashInfer, per layer (blocks, 2, 16, H, D). */
const flashInfer: Reference = (x, l, c, t, h, d) => {
  const [b, s] = split(t, 16);
  return l * 2 * nb(x, 16) * 16 * x.H * x.D + (((b * 2 + c) * 16 + s) * x.H + h) * x.D + d;
};
/** vLLM-Gaudi, per layer a K cache then a V cache, each (blocks × 128, H, D). */
const gaudi: Reference = (x, l, c, t, h, d) =>
  (l * 2 + c) * nb(x, 128) * 128 * x.H * x.D + (t * x.H + h) * x.D + d;
/** SGLang, per layer a K buffer then a V buffer, each (tokens, H, D). */
const sglang: Reference = (x, l, c, t, h, d) => (l * 2 + c) * x.T * x.H * x.D + (t * x.H + h) * x.D + d;
/** TensorRT-LLM, (blocks, layers, 2, H, 32, D). */
const tensorrt: Reference = (x, l, c, t, h, d) => {
  const [b, s] = split(t, 32);
  return ((((b * x.L + l) * 2 + c) * x.H + h) * 32 + s) * x.D + d;
};
/** llama.cpp-like without flash attention: per layer K (blocks, P, H, D) then V transposed (blocks, H, D, P); P = 24. */
const vTransposed: Reference = (x, l, c, t, h, d) => {
  const [b, s] = split(t, 24);
  const plane = nb(x, 24) * 24 * x.H * x.D;
  const base = (l * 2 + c) * plane + b * 24 * x.H * x.D;
  return base + (c === 0 ? (s * x.H + h) * x.D + d : (h * x.D + d) * 24 + s);
};
/** Every layer per block with K and V as planes inside it, head-major: (blocks, 2, layers, H, 8, D). */
const allLayersPlanes: Reference = (x, l, c, t, h, d) => {
  const [b, s] = split(t, 8);
  return ((((b * 2 + c) * x.L + l) * x.H + h) * 8 + s) * x.D + d;
};
/** Canonical, one layer: (2, pages, H, 16, D). */
const canonicalLayer = (x: Dims, c: number, t: number, h: number, d: number) => {
  const [p, s] = split(t, 16);
  return (((c * nb(x, 16) + p) * x.H + h) * 16 + s) * x.D + d;
};

type Shape = { model: string; layers: number; kvHeads: number; headDim: number; tokens: number; dtype: KvDtype };

const formats: ReadonlyArray<readonly [string, (s: Shape) => KvDescriptor, Reference]> = [
  ["vLLM FlashAttention", nativeFormats.vllmFlashAttention, flashAttention],
  ["vLLM FlashInfer", nativeFormats.vllmFlashInfer, flashInfer],
  ["ROCm", nativeFormats.rocm, flashAttention],
  ["vLLM-Gaudi", nativeFormats.vllmGaudi, gaudi],
  ["SGLang", nativeFormats.sglang, sglang],
  ["TensorRT-LLM", nativeFormats.tensorrtLlm, tensorrt],
  [
    "V transposed (llama.cpp without flash attention)",
    (s) => ({
      ...nativeFormats.vllmFlashAttention(s),
      format: "v-transposed",
      pageSize: 24,
      layout: { tokenOrder: "NHD", kvPacking: "planes", vTransposed: true, layerPacking: "per_layer" },
    }),
    vTransposed,
  ],
  [
    "all layers per block, K/V planes",
    (s) => ({
      ...nativeFormats.tensorrtLlm(s),
      format: "all-layers-planes",
      pageSize: 8,
      layout: { tokenOrder: "HND", kvPacking: "planes", vTransposed: false, layerPacking: "all_layers_per_block" },
    }),
    allLayersPlanes,
  ],
];

const dtypes: KvDtype[] = ["f32", "f16", "bf16", "fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2"];
const shapeArb = fc.record({
  model: fc.constant("llama-test"),
  layers: fc.integer({ min: 1, max: 3 }),
  kvHeads: fc.integer({ min: 1, max: 4 }),
  headDim: fc.integer({ min: 1, max: 16 }),
  tokens: fc.integer({ min: 0, max: 70 }),
  dtype: fc.constantFrom(...dtypes),
});

/** Deterministic random bytes (xorshift32): every bit pattern, NaNs included, must survive layout changes. */
const randomBytes = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
};

/** Places the logical KV (l, c, t, h, d) into `out` at the element positions `at` gives. */
const place = (s: Shape, logical: Uint8Array, out: Uint8Array, at: (l: number, c: number, t: number, h: number, d: number) => number) => {
  const es = dtypeBytes(s.dtype);
  let i = 0;
  for (let l = 0; l < s.layers; l++)
    for (let c = 0; c < 2; c++)
      for (let t = 0; t < s.tokens; t++)
        for (let h = 0; h < s.kvHeads; h++)
          for (let d = 0; d < s.headDim; d++, i += es) out.set(logical.subarray(i, i + es), at(l, c, t, h, d) * es);
};

const fixture = (s: Shape, make: (s: Shape) => KvDescriptor, ref: Reference, seed: number) => {
  const x: Dims = { L: s.layers, H: s.kvHeads, D: s.headDim, T: s.tokens };
  const desc = make(s);
  const es = dtypeBytes(s.dtype);
  const logical = randomBytes(s.layers * 2 * s.tokens * s.kvHeads * s.headDim * es, seed);
  const native = new Uint8Array(nativeByteLength(desc));
  place(s, logical, native, (l, c, t, h, d) => ref(x, l, c, t, h, d));
  const layerBytes = 2 * Math.ceil(s.tokens / 16) * 16 * s.kvHeads * s.headDim * es;
  const canonical = new Uint8Array(s.layers * layerBytes);
  place(s, logical, canonical, (l, c, t, h, d) => (l * layerBytes) / es + canonicalLayer(x, c, t, h, d));
  const canonicalLayers = Array.from({ length: s.layers }, (_, l) => canonical.subarray(l * layerBytes, (l + 1) * layerBytes));
  return { desc, native, canonicalLayers };
};

describe("KV native format codecs", () => {
  for (const [name, make, ref] of formats) {
    it(`${name}: native → canonical puts every element where the vendor layout says and zero-pads past tokens`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer(), (s, seed) => {
          const { desc, native, canonicalLayers } = fixture(s, make, ref, seed);
          const canonical = toCanonical(desc, native);
          expect(canonical.descriptor).toEqual(canonicalDescriptor(desc));
          expect(canonical.layers).toEqual(canonicalLayers);
        }),
        { numRuns: 60 },
      );
    });

    it(`${name}: canonical → native → canonical → native is byte-exact, layer by layer`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer(), (s, seed) => {
          const { desc, native, canonicalLayers } = fixture(s, make, ref, seed);
          const rebuilt = new Uint8Array(native.length).fill(0xa5);
          canonicalLayers.forEach((layer, l) => layerFromCanonical(layer, desc, l, rebuilt));
          expect(rebuilt).toEqual(native);
          const again = Array.from({ length: s.layers }, (_, l) => layerToCanonical(desc, rebuilt, l));
          expect(fromCanonical({ descriptor: canonicalDescriptor(desc), layers: again }, desc)).toEqual(native);
        }),
        { numRuns: 60 },
      );
    });

    it(`${name}: garbage in block padding never reaches canonical (only tokens < count are read)`, () => {
      fc.assert(
        fc.property(shapeArb, fc.integer(), (s, seed) => {
          const { desc, canonicalLayers } = fixture(s, make, ref, seed);
          const x: Dims = { L: s.layers, H: s.kvHeads, D: s.headDim, T: s.tokens };
          const noisy = randomBytes(nativeByteLength(desc), seed ^ 0x5bd1e995);
          const logical = randomBytes(s.layers * 2 * s.tokens * s.kvHeads * s.headDim * dtypeBytes(s.dtype), seed);
          place(s, logical, noisy, (l, c, t, h, d) => ref(x, l, c, t, h, d));
          expect(toCanonical(desc, noisy).layers).toEqual(canonicalLayers);
        }),
        { numRuns: 40 },
      );
    });
  }

  it("every pair of formats with the same dtype translates exactly through canonical", () => {
    fc.assert(
      fc.property(
        shapeArb,
        fc.integer(),
        fc.constantFrom(...formats),
        fc.constantFrom(...formats),
        (s, seed, [, makeA, refA], [, makeB, refB]) => {
          const a = fixture(s, makeA, refA, seed);
          const b = fixture(s, makeB, refB, seed);
          const plan = planTranslation(a.desc, b.desc);
          expect(plan.refused).toBe(false);
          if (plan.refused) return;
          expect(plan.exact).toBe(true);
          expect(translate(plan, a.native).bytes).toEqual(b.native);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a buffer of the wrong size is refused with a KvFormatError naming the format and canonical", () => {
    const desc = nativeFormats.vllmGaudi({ model: "m", layers: 2, kvHeads: 2, headDim: 4, tokens: 5 });
    const error = (() => {
      try {
        layerToCanonical(desc, new Uint8Array(nativeByteLength(desc) - 1), 0);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(KvFormatError);
    expect(error).toMatchObject({ from: "vllm-gaudi/bf16", to: "canonical/bf16" });
  });
});
