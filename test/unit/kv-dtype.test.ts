import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Fp8Dtype, type KvDtype } from "../../src/kv/descriptor.ts";
import { BF16_TO_F16_BOUND, FNUZ_TO_FN_BOUND, roundingBound } from "../../src/kv/error-bound.ts";
import { converterFor } from "../../src/kv/kernels/convert.ts";
import { f32BitsToBf16Bits, f32BitsToF16Bits } from "../../src/kv/kernels/half.ts";
import { KERNELS_WAT_SHA256 } from "../../src/kv/kernels/wasm/kernels-wasm.ts";
import { kernelsWat } from "../../src/kv/kernels/wasm/kernels-wat.ts";

// Reference decoders written from the format definitions, independent of the kernels.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f32Value = (bits: number) => {
  u32[0] = bits;
  return f32[0]!;
};
const f16Value = (h: number) => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 31;
  const m = h & 0x3ff;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
};
const bf16Value = (b: number) => f32Value(b << 16);
const FP8 = {
  fp8_e4m3fn: { m: 3, bias: 7 },
  fp8_e4m3fnuz: { m: 3, bias: 8 },
  fp8_e5m2: { m: 2, bias: 15 },
} as const;
const fp8Value = (dtype: Fp8Dtype, c: number) => {
  const { m, bias } = FP8[dtype];
  const s = c & 0x80 ? -1 : 1;
  const e = (c & 0x7f) >>> m;
  const mant = c & ((1 << m) - 1);
  if (dtype === "fp8_e4m3fn" && (c & 0x7f) === 0x7f) return NaN;
  if (dtype === "fp8_e4m3fnuz" && c === 0x80) return NaN;
  if (dtype === "fp8_e5m2" && e === 31) return mant === 0 ? s * Infinity : NaN;
  return e === 0 ? s * mant * 2 ** (1 - bias - m) : s * (1 + mant / (1 << m)) * 2 ** (e - bias);
};
const BYTES: Record<KvDtype, number> = { f32: 4, f16: 2, bf16: 2, fp8_e4m3fn: 1, fp8_e4m3fnuz: 1, fp8_e5m2: 1 };
const FP8_MAX = { fp8_e4m3fn: 448, fp8_e4m3fnuz: 240, fp8_e5m2: 57344 } as const;

/** Real values of a buffer of `dtype` codes at `scale`. */
const values = (dtype: KvDtype, bytes: Uint8Array, scale = 1): number[] => {
  const n = bytes.length / BYTES[dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: n }, (_, i) => {
    if (dtype === "f32") return f32Value(view.getUint32(4 * i, true));
    if (dtype === "f16") return f16Value(view.getUint16(2 * i, true));
    if (dtype === "bf16") return bf16Value(view.getUint16(2 * i, true));
    return fp8Value(dtype, bytes[i]!) * scale;
  });
};
const codes = (dtype: KvDtype, bytes: Uint8Array): number[] => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length / BYTES[dtype];
  return Array.from({ length: n }, (_, i) =>
    BYTES[dtype] === 4 ? view.getUint32(4 * i, true) : BYTES[dtype] === 2 ? view.getUint16(2 * i, true) : bytes[i]!,
  );
};

const fromCodes = (dtype: KvDtype, cs: readonly number[]): Uint8Array => {
  const bytes = new Uint8Array(cs.length * BYTES[dtype]);
  const view = new DataView(bytes.buffer);
  cs.forEach((c, i) => (BYTES[dtype] === 4 ? view.setUint32(4 * i, c, true) : BYTES[dtype] === 2 ? view.setUint16(2 * i, c, true) : (bytes[i] = c)));
  return bytes;
};

const convert = (from: KvDtype, fromScale: number, to: KvDtype, toScale: number, src: Uint8Array) => {
  const out = new Uint8Array((src.length / BYTES[from]) * BYTES[to]);
  const report = { saturated: 0, belowNormal: 0 };
  converterFor(from, fromScale, to, toScale)(src, out, report);
  return { out, report };
};

const all16 = Array.from({ length: 65536 }, (_, i) => i);
const all8 = Array.from({ length: 256 }, (_, i) => i);

/** |y − x| ≤ max(relative × |x|, absolute), with slack for the f64 arithmetic of the check itself. */
const within = (x: number, y: number, relative: number, absolute: number) =>
  Math.abs(y - x) <= Math.max(relative * Math.abs(x), absolute) * (1 + 1e-12);

/** f32 bit patterns spread over every exponent, plus the special values. */
const f32Bits = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0x7f800000, 0xff800000, 0x7fc00000, 0x00000000, 0x80000000, 0x477ff000, 0x477fefff, 0x33000000, 0x33000001),
);
const f32Batch = fc.array(f32Bits, { minLength: 1, maxLength: 400 });

/** Checks y is a nearest representable value of x among `candidates` (code → value), ties to the even code. */
const nearestEven = (x: number, code: number, candidates: readonly number[], valueOf: (c: number) => number) => {
  const d = Math.abs(valueOf(code) - x);
  let best = Infinity;
  const ties: number[] = [];
  for (const c of candidates) {
    const v = valueOf(c);
    if (Number.isNaN(v) || !Number.isFinite(v)) continue;
    const dc = Math.abs(v - x);
    if (dc < best) {
      best = dc;
      ties.length = 0;
    }
    if (dc === best) ties.push(c);
  }
  expect(d).toBe(best);
  if (ties.length > 1) expect(code & 1).toBe(0);
};

/** A 16-bit code and the codes one ulp either side of it (same sign). */
const neighbours = (c: number) => [c - 1, c, c + 1].filter((n) => n >= 0 && n <= 0xffff && (n & 0x8000) === (c & 0x8000));

describe("KV dtype conversions: f32, f16, bf16", () => {
  it("f16 → f32 and bf16 → f32 are exact for all 65536 codes (NaN stays NaN)", () => {
    for (const from of ["f16", "bf16"] as const) {
      const src = fromCodes(from, all16);
      const got = values("f32", convert(from, 1, "f32", 1, src).out);
      expect(got).toEqual(values(from, src));
    }
  });

  it("f32 → f16 rounds to the nearest even f16, within 2^-11 relative / 2^-25 absolute; |x| ≥ 65520 → ±inf; NaN stays NaN", () => {
    fc.assert(
      fc.property(f32Batch, (bits) => {
        const xs = bits.map(f32Value);
        const ys = codes("f16", convert("f32", 1, "f16", 1, fromCodes("f32", bits)).out);
        const bound = roundingBound("f16");
        xs.forEach((x, i) => {
          const y = f16Value(ys[i]!);
          if (Number.isNaN(x)) return expect(y).toBeNaN();
          if (Math.abs(x) >= 65520) return expect(y).toBe(Math.sign(x) * Infinity);
          expect(within(x, y, bound.relative, bound.absolute)).toBe(true);
          if (Math.abs(x) > 2 ** -14 && Math.abs(x) < 65504) nearestEven(x, ys[i]!, neighbours(ys[i]!), f16Value);
        });
      }),
      { numRuns: 200 },
    );
  });

  it("f32 → f16 → f32 is the identity on every f16 value", () => {
    const src = fromCodes("f16", all16);
    const wide = convert("f16", 1, "f32", 1, src).out;
    const back = codes("f16", convert("f32", 1, "f16", 1, wide).out);
    all16.forEach((h, i) => (Number.isNaN(f16Value(h)) ? expect(f16Value(back[i]!)).toBeNaN() : expect(back[i]).toBe(h)));
  });

  it("f32 → f16 and f32 → bf16 round every exact midpoint between neighbouring codes to the even code (all 65536 codes)", () => {
    for (const [to, valueOf] of [["f16", f16Value], ["bf16", bf16Value]] as const) {
      const pairs = all16.filter((c) => (c & 0x7fff) < 0x7fff && [c, c + 1].every((n) => Number.isFinite(valueOf(n))) && (c & 0x7fff) !== 0x7fff);
      const mids = pairs.map((c) => {
        f32[0] = (valueOf(c) + valueOf(c + 1)) / 2;
        return u32[0]!;
      });
      const got = codes(to, convert("f32", 1, to, 1, fromCodes("f32", mids)).out);
      pairs.forEach((c, i) => expect(got[i]).toBe(c & 1 ? c + 1 : c));
    }
  });

  it("f32 → bf16 rounds to the nearest even bf16 within 2^-8 relative; NaN stays NaN, ±inf kept", () => {
    fc.assert(
      fc.property(f32Batch, (bits) => {
        const ys = codes("bf16", convert("f32", 1, "bf16", 1, fromCodes("f32", bits)).out);
        const bound = roundingBound("bf16");
        bits.forEach((b, i) => {
          const x = f32Value(b);
          const y = bf16Value(ys[i]!);
          if (Number.isNaN(x)) return expect(y).toBeNaN();
          if (!Number.isFinite(x) || !Number.isFinite(y)) return expect(y).toBe(Math.abs(x) >= 3.3961e38 ? Math.sign(x) * Infinity : x);
          expect(within(x, y, bound.relative, bound.absolute)).toBe(true);
          if ((ys[i]! & 0x7f80) !== 0 && (ys[i]! & 0x7fff) < 0x7f7f) nearestEven(x, ys[i]!, neighbours(ys[i]!), bf16Value);
        });
      }),
      { numRuns: 200 },
    );
  });

  it("f16 → bf16 stays within 2^-8 relative for all 65536 codes; NaN and ±inf kept", () => {
    const src = fromCodes("f16", all16);
    const got = values("bf16", convert("f16", 1, "bf16", 1, src).out);
    const bound = roundingBound("bf16");
    values("f16", src).forEach((x, i) => {
      if (!Number.isFinite(x)) return expect(got[i]).toEqual(x);
      expect(within(x, got[i]!, bound.relative, 0)).toBe(true);
    });
  });

  it("bf16 → f16 is exact in [2^-14, 65504], saturates above to ±65504, stays within 2^-25 below, and counts both (all 65536 codes)", () => {
    const src = fromCodes("bf16", all16);
    const { out, report } = convert("bf16", 1, "f16", 1, src);
    const got = values("f16", out);
    let saturated = 0;
    let belowNormal = 0;
    values("bf16", src).forEach((x, i) => {
      const y = got[i]!;
      const a = Math.abs(x);
      if (!Number.isFinite(x)) return expect(y).toEqual(x);
      if (a > 65504) {
        saturated++;
        return expect(y).toBe(Math.sign(x) * 65504);
      }
      if (a >= 2 ** -14 || a === 0) return expect(y).toBe(x);
      belowNormal++;
      expect(within(x, y, BF16_TO_F16_BOUND.relative, BF16_TO_F16_BOUND.absolute)).toBe(true);
    });
    expect(report).toEqual({ saturated, belowNormal });
    expect(saturated).toBeGreaterThan(0);
    expect(belowNormal).toBeGreaterThan(0);
  });
});

const fp8s: Fp8Dtype[] = ["fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2"];
const scaleArb = fc.integer({ min: -12, max: 12 }).chain((e) => fc.double({ min: 1, max: 2, noNaN: true }).map((m) => Math.fround(m * 2 ** e)));

describe("KV dtype conversions: fp8 with scales", () => {
  it("fp8 → f32 at scale 1 decodes all 256 codes of each format by its definition (max 448 / 240 / 57344, NaN and inf codes)", () => {
    for (const dtype of fp8s) {
      expect(values("f32", convert(dtype, 1, "f32", 1, fromCodes(dtype, all8)).out)).toEqual(all8.map((c) => fp8Value(dtype, c)));
    }
    expect([fp8Value("fp8_e4m3fn", 0x7e), fp8Value("fp8_e4m3fnuz", 0x7f), fp8Value("fp8_e5m2", 0x7b)]).toEqual([448, 240, 57344]);
    expect(all8.filter((c) => Number.isNaN(fp8Value("fp8_e4m3fnuz", c)))).toEqual([0x80]);
    expect(all8.filter((c) => Number.isNaN(fp8Value("fp8_e4m3fn", c)))).toEqual([0x7f, 0xff]);
    expect(all8.filter((c) => Math.abs(fp8Value("fp8_e5m2", c)) === Infinity)).toEqual([0x7c, 0xfc]);
  });

  it("f32 → fp8 → f32 is the identity on every finite fp8 value (e4m3fn keeps −0)", () => {
    for (const dtype of fp8s) {
      const finite = all8.filter((c) => Number.isFinite(fp8Value(dtype, c)));
      const wide = convert(dtype, 1, "f32", 1, fromCodes(dtype, finite)).out;
      expect(codes(dtype, convert("f32", 1, dtype, 1, wide).out)).toEqual(finite);
    }
  });

  it("f32 → fp8 with a scale picks the nearest code (ties to even) within the stated bound; NaN → NaN; out of range saturates (e4m3) or → ±inf (e5m2)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fp8s), scaleArb, fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 100 }), (dtype, scale, raw) => {
        // Values spread over the fp8 range at this scale: exponent −12..+18 around the scale, random sign and mantissa.
        const bits = raw.map((r) => ((r & 0x807fffff) | ((127 + ((r >>> 23) % 31) - 12) << 23)) >>> 0);
        bits.push(0x7f800000, 0xff800000, 0x7fc00000);
        const { out } = convert("f32", 1, dtype, scale, fromCodes("f32", bits));
        const bound = roundingBound(dtype, scale);
        const max = FP8_MAX[dtype] * scale;
        bits.forEach((b, i) => {
          const x = f32Value(b);
          const code = out[i]!;
          const y = fp8Value(dtype, code) * scale;
          if (Number.isNaN(x)) return expect(y).toBeNaN();
          if (Math.abs(x) > max) {
            const inf = dtype === "fp8_e5m2" && Math.abs(x) >= 61440 * scale;
            return expect(y).toBe(Math.sign(x) * (inf ? Infinity : max));
          }
          expect(within(x, y, bound.relative, bound.absolute)).toBe(true);
          nearestEven(x / scale, code, all8, (c) => fp8Value(dtype, c));
        });
      }),
      { numRuns: 300 },
    );
  });

  it("f16 → fp8 at scale 1 rounds all 65536 f16 codes to the nearest code, exact ties to the even code (f16 holds every fp8 midpoint)", () => {
    for (const dtype of fp8s) {
      const out = convert("f16", 1, dtype, 1, fromCodes("f16", all16)).out;
      const finite = all8.filter((c) => Number.isFinite(fp8Value(dtype, c)));
      all16.forEach((h) => {
        const x = f16Value(h);
        const y = fp8Value(dtype, out[h]!);
        if (Number.isNaN(x)) return expect(y).toBeNaN();
        if (Math.abs(x) > FP8_MAX[dtype]) return expect(Math.abs(y)).toBe(dtype === "fp8_e5m2" && Math.abs(x) >= 61440 ? Infinity : FP8_MAX[dtype]);
        nearestEven(x, out[h]!, finite, (c) => fp8Value(dtype, c));
      });
    }
  });

  it("bf16 and f16 → fp8 (table path) give the same codes as f32 → fp8 of the same values", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fp8s), fc.constantFrom("f16" as const, "bf16" as const), scaleArb, (dtype, from, scale) => {
        const src = fromCodes(from, all16);
        const wide = convert(from, 1, "f32", 1, src).out;
        expect(convert(from, 1, dtype, scale, src).out).toEqual(convert("f32", 1, dtype, scale, wide).out);
      }),
      { numRuns: 12 },
    );
  });

  it("fp8 → f32 / f16 / bf16 with a scale stays within the target's bound; NaN stays NaN, e5m2 ±inf stays ±inf", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fp8s), fc.constantFrom("f32" as const, "f16" as const, "bf16" as const), scaleArb, (dtype, to, scale) => {
        const got = values(to, convert(dtype, scale, to, 1, fromCodes(dtype, all8)).out);
        const bound = roundingBound(to);
        all8.forEach((c, i) => {
          const x = fp8Value(dtype, c) * scale;
          const y = got[i]!;
          if (!Number.isFinite(x)) return expect(y).toEqual(x);
          if (to === "f16" && Math.abs(x) >= 65520) return expect(y).toBe(Math.sign(x) * Infinity);
          expect(within(x, y, bound.relative, bound.absolute)).toBe(true);
        });
      }),
      { numRuns: 100 },
    );
  });

  it("e4m3fn → e4m3fnuz at 2× scale is bit-exact for all 256 codes: same byte except 0x80 → 0x00 and 0x7F/0xFF → 0x80, same value", () => {
    const out = convert("fp8_e4m3fn", 0.75, "fp8_e4m3fnuz", 1.5, fromCodes("fp8_e4m3fn", all8)).out;
    all8.forEach((c) => {
      const expected = c === 0x80 ? 0x00 : c === 0x7f || c === 0xff ? 0x80 : c;
      expect(out[c]).toBe(expected);
      const before = fp8Value("fp8_e4m3fn", c) * 0.75;
      const after = fp8Value("fp8_e4m3fnuz", out[c]!) * 1.5;
      if (Number.isNaN(before)) expect(after).toBeNaN();
      else expect(after).toBe(before === 0 ? 0 : before);
    });
  });

  it("e4m3fnuz → e4m3fn at ½ scale keeps all 256 codes' bytes and values except NaN 0x80 → 0x7F and 0x7F/0xFF saturating to 0x7E/0xFE", () => {
    const out = convert("fp8_e4m3fnuz", 2, "fp8_e4m3fn", 1, fromCodes("fp8_e4m3fnuz", all8)).out;
    all8.forEach((c) => {
      const expected = c === 0x80 ? 0x7f : c === 0x7f ? 0x7e : c === 0xff ? 0xfe : c;
      expect(out[c]).toBe(expected);
      const before = fp8Value("fp8_e4m3fnuz", c) * 2;
      const after = fp8Value("fp8_e4m3fn", out[c]!);
      if (Number.isNaN(before)) return expect(after).toBeNaN();
      if (c === 0x7f || c === 0xff) {
        expect(Math.abs(before)).toBe(480);
        expect(after).toBe(Math.sign(before) * 448);
        return expect(within(before, after, FNUZ_TO_FN_BOUND.relative, 0)).toBe(true);
      }
      expect(after).toBe(before);
    });
  });

  it("e4m3fn ↔ e4m3fnuz is bit-exact on random buffers too (the 32-bit word fast path agrees with the per-code rule)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.integer({ min: 0, max: 3 }), (bytes, offset) => {
        const src = new Uint8Array(bytes.length + offset).subarray(offset);
        src.set(bytes);
        const out = convert("fp8_e4m3fn", 1, "fp8_e4m3fnuz", 2, src).out;
        expect([...out]).toEqual([...bytes].map((c) => (c === 0x80 ? 0 : (c & 0x7f) === 0x7f ? 0x80 : c)));
        const back = convert("fp8_e4m3fnuz", 2, "fp8_e4m3fn", 1, src).out;
        expect([...back]).toEqual([...bytes].map((c) => (c === 0x80 ? 0x7f : (c & 0x7f) === 0x7f ? c - 1 : c)));
      }),
    );
  });

  it("fp8 → fp8 at scales that are not exactly 2× re-quantises to the nearest code within the target's bound", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fp8s), fc.constantFrom(...fp8s), scaleArb, scaleArb, (from, to, fs, ts) => {
        const out = convert(from, fs, to, ts, fromCodes(from, all8)).out;
        const bound = roundingBound(to, ts);
        all8.forEach((c) => {
          const x = fp8Value(from, c) * fs;
          const y = fp8Value(to, out[c]!) * ts;
          if (Number.isNaN(x)) return expect(y).toBeNaN();
          if (Math.abs(x) > FP8_MAX[to] * ts) return expect(Math.abs(y)).toBe(to === "fp8_e5m2" && Math.abs(x) >= 61440 * ts ? Infinity : FP8_MAX[to] * ts);
          expect(within(x, y, bound.relative, bound.absolute)).toBe(true);
        });
      }),
      { numRuns: 100 },
    );
  });
});

// The kernels run in WebAssembly with short paths for common values; these compare them bit for bit with the
// scalar rules (half.ts, fp8.ts) on inputs that mix every class of value inside one vector.
describe("KV dtype kernels agree bit for bit with the scalar rules", () => {
  /** f32 bits of an f16 code, NaN payload kept (the f16 → f32 rule). */
  const f16Bits32 = (h: number) => {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) return ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
    f32[0] = f16Value(h);
    return u32[0]!;
  };
  const bf16ToF16Rule = (b: number) => {
    const h = f32BitsToF16Bits((b << 16) >>> 0);
    return (h & 0x7fff) === 0x7c00 && (b & 0x7fff) !== 0x7f80 ? (h & 0x8000) | 0x7bff : h;
  };
  /** All 65536 codes in an order fixed by `seed`, so one vector mixes normals, subnormals, zeros, inf and NaN. */
  const shuffled16 = (seed: number) => {
    const cs = [...all16];
    let x = seed | 1;
    for (let i = cs.length - 1; i > 0; i--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % (i + 1);
      [cs[i], cs[j]] = [cs[j]!, cs[i]!];
    }
    return cs;
  };

  it("the compiled module is built from the current kernel text (run src/kv/kernels/wasm/build.ts after editing it)", () => {
    expect(createHash("sha256").update(kernelsWat()).digest("hex")).toBe(KERNELS_WAT_SHA256);
  });

  it("f16 → f32, f16 → bf16 and bf16 → f16 (with its counts) match the scalar rules on all 65536 codes in mixed order", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const cs = shuffled16(seed);
        const src = fromCodes("f16", cs);
        expect(codes("f32", convert("f16", 1, "f32", 1, src).out)).toEqual(cs.map((h) => f16Bits32(h) >>> 0));
        expect(codes("bf16", convert("f16", 1, "bf16", 1, src).out)).toEqual(cs.map((h) => f32BitsToBf16Bits(f16Bits32(h))));
        const { out, report } = convert("bf16", 1, "f16", 1, src);
        expect(codes("f16", out)).toEqual(cs.map(bf16ToF16Rule));
        const abs = cs.map((b) => b & 0x7fff);
        expect(report).toEqual({
          saturated: abs.filter((a) => a >= 0x4780 && a < 0x7f80).length,
          belowNormal: abs.filter((a) => a !== 0 && a < 0x3880).length,
        });
      }),
      { numRuns: 4 },
    );
  });

  it("f32 → f16 and f32 → bf16 match the scalar rules on long mixed batches (odd lengths, several staging chunks)", () => {
    const batch = fc.array(f32Bits, { minLength: 70_001, maxLength: 70_001 });
    fc.assert(
      fc.property(batch, fc.integer({ min: 0, max: 200 }), (bits, cut) => {
        const xs = bits.slice(cut);
        const src = fromCodes("f32", xs);
        expect(codes("f16", convert("f32", 1, "f16", 1, src).out)).toEqual(xs.map(f32BitsToF16Bits));
        expect(codes("bf16", convert("f32", 1, "bf16", 1, src).out)).toEqual(xs.map(f32BitsToBf16Bits));
      }),
      { numRuns: 3 },
    );
  });

  it("f32 → fp8 (threshold table) picks the nearest code, ties to even, at and one ulp around every midpoint between codes", () => {
    fc.assert(
      fc.property(fc.constantFrom(...fp8s), scaleArb, (dtype, scale) => {
        const finite = all8.filter((c) => Number.isFinite(fp8Value(dtype, c)));
        const positive = finite.filter((c) => c < 0x80).sort((a, b) => fp8Value(dtype, a) - fp8Value(dtype, b));
        const bits: number[] = [];
        for (let i = 0; i + 1 < positive.length; i++) {
          const mid = ((fp8Value(dtype, positive[i]!) + fp8Value(dtype, positive[i + 1]!)) / 2) * scale;
          f32[0] = mid;
          const b = u32[0]!;
          for (const n of [b - 1, b, b + 1]) bits.push(n >>> 0, (n | 0x80000000) >>> 0);
        }
        const out = convert("f32", 1, dtype, scale, fromCodes("f32", bits)).out;
        bits.forEach((b, i) => {
          const x = f32Value(b) / scale;
          if (Math.abs(x) > FP8_MAX[dtype]) return;
          nearestEven(x, out[i]!, finite, (c) => fp8Value(dtype, c));
        });
      }),
      { numRuns: 60 },
    );
  });
});
