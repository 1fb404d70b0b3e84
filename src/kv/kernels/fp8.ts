// The three fp8 KV formats and their conversions to and from wider floats with a scale (real = code × scale).
// Decoding is a 256-entry table built per scale; encoding rounds to nearest even with each format's own
// out-of-range rule: the e4m3 formats have no infinity, so anything beyond ±max (±inf included) saturates;
// e5m2 is f16's top byte and overflows to ±inf like f16.
import type { Fp8Dtype } from "../descriptor.ts";
import { f16ToF32Table, f32BitsToBf16Bits, f32BitsToF16Bits } from "./half.ts";

interface Fp8Spec {
  readonly mantissaBits: number;
  readonly bias: number;
  /** Largest finite code (positive). */
  readonly maxCode: number;
  /** f32 bits of the largest finite value; the e4m3 formats saturate anything above it. */
  readonly maxBits: number;
  /** f32 bits of the smallest magnitude that rounds to infinity (e5m2 only; e4m3 saturates instead). */
  readonly infFromBits: number | undefined;
  readonly nan: (sign: number) => number;
  readonly hasNegativeZero: boolean;
}

const FP8_SPECS: Readonly<Record<Fp8Dtype, Fp8Spec>> = {
  // OCP e4m3fn: bias 7, max 448, NaN S.1111.111, no infinity.
  fp8_e4m3fn: { mantissaBits: 3, bias: 7, maxCode: 0x7e, maxBits: 0x43e00000, infFromBits: undefined, nan: (s) => s | 0x7f, hasNegativeZero: true },
  // AMD/Graphcore e4m3fnuz: bias 8, max 240, the only NaN is 0x80 (where −0 would be), no infinity.
  fp8_e4m3fnuz: { mantissaBits: 3, bias: 8, maxCode: 0x7f, maxBits: 0x43700000, infFromBits: undefined, nan: () => 0x80, hasNegativeZero: false },
  // e5m2: bias 15, max 57344, ±inf 0x7C/0xFC; 61440 (halfway to 2^16) and above round to inf.
  fp8_e5m2: { mantissaBits: 2, bias: 15, maxCode: 0x7b, maxBits: 0x47600000, infFromBits: 0x47700000, nan: (s) => s | 0x7e, hasNegativeZero: true },
};

/** Value of a code at scale 1 (NaN, ±inf where the format has them). */
const decodeFp8 = (code: number, dtype: Fp8Dtype): number => {
  const spec = FP8_SPECS[dtype];
  const m = spec.mantissaBits;
  const sign = code & 0x80 ? -1 : 1;
  const e = (code & 0x7f) >>> m;
  const mant = code & ((1 << m) - 1);
  if (dtype === "fp8_e4m3fnuz" && code === 0x80) return Number.NaN;
  if (dtype === "fp8_e4m3fn" && (code & 0x7f) === 0x7f) return Number.NaN;
  if (dtype === "fp8_e5m2" && e === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  const emin = 1 - spec.bias;
  return e === 0 ? sign * mant * 2 ** (emin - m) : sign * (1 + mant / (1 << m)) * 2 ** (e - spec.bias);
};

/** f32 bits → fp8 code: round to nearest even, out of range by the format's rule, NaN → the format's NaN. */
const encodeFp8FromF32Bits = (bits: number, spec: Fp8Spec): number => {
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  const m = spec.mantissaBits;
  let code: number;
  if (a > 0x7f800000) return spec.nan(sign);
  if (spec.infFromBits === undefined ? a > spec.maxBits : a >= spec.infFromBits) {
    code = spec.infFromBits === undefined ? spec.maxCode : spec.maxCode + 1;
  } else if ((a >>> 23) - 127 >= 1 - spec.bias) {
    const shift = 23 - m;
    code = ((a + (1 << (shift - 1)) - 1 + ((a >>> shift) & 1)) >>> shift) - ((127 - spec.bias) << m);
  } else {
    // Below the smallest normal: count units of 2^(emin − m), rounding to even.
    const shift = 150 + (1 - spec.bias) - m - (a >>> 23);
    if (shift > 24 || a === 0) code = 0;
    else {
      const mant = (a & 0x7fffff) | 0x800000;
      code = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && (code & 1) === 1)) code++;
    }
  }
  return code === 0 && !spec.hasNegativeZero ? 0 : sign | code;
};

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * f64 → f32 bits rounded to odd: truncate, and set the last bit when anything was dropped. A value rounded
 * this way and then to a format at least two bits narrower rounds exactly as the f64 would have directly,
 * so fp8/f16/bf16 results built from f64 products avoid double rounding.
 */
const f32BitsRoundToOdd = (x: number): number => {
  scratchF32[0] = x;
  let bits = scratchU32[0]!;
  const back = scratchF32[0]!;
  if (back !== x && !Number.isNaN(x)) {
    if (Math.abs(back) > Math.abs(x)) bits -= 1;
    bits |= 1;
  }
  return bits >>> 0;
};

const encodeFp8 = (value: number, dtype: Fp8Dtype): number =>
  encodeFp8FromF32Bits(f32BitsRoundToOdd(value), FP8_SPECS[dtype]);

export type WideDtype = "f32" | "f16" | "bf16";

/** Bits of `x` in a wide format, rounded once to nearest even. */
const wideBits = (x: number, to: WideDtype): number => {
  const odd = f32BitsRoundToOdd(x);
  if (to === "f16") return f32BitsToF16Bits(odd);
  if (to === "bf16") return f32BitsToBf16Bits(odd);
  scratchF32[0] = x;
  return scratchU32[0]!;
};

/** Decode table for one scale: wide-format bits of code × scale, for all 256 codes. */
export const fp8DecodeTable = (from: Fp8Dtype, scale: number, to: WideDtype): Uint16Array | Uint32Array => {
  const out = to === "f32" ? new Uint32Array(256) : new Uint16Array(256);
  for (let c = 0; c < 256; c++) out[c] = wideBits(decodeFp8(c, from) * scale, to);
  return out;
};

/** fp8 → 16-bit decode table of code pairs: entry (c1 << 8 | c0) holds c0's code in its low half and c1's above. */
export const fp8DecodePairTable = (from: Fp8Dtype, scale: number, to: "f16" | "bf16"): Uint32Array => {
  const single = fp8DecodeTable(from, scale, to);
  const out = new Uint32Array(65536);
  for (let c1 = 0; c1 < 256; c1++) {
    const high = single[c1]! << 16;
    for (let c0 = 0; c0 < 256; c0++) out[(c1 << 8) | c0] = (single[c0]! | high) >>> 0;
  }
  return out;
};

/** f32 bits → fp8 code of (value ÷ scale), rounded once (to odd in f32, then to nearest even in fp8). */
const f32Encoder = (to: Fp8Dtype, scale: number): ((bits: number) => number) => {
  const spec = FP8_SPECS[to];
  if (scale === 1) return (bits) => encodeFp8FromF32Bits(bits, spec);
  return (bits) => {
    scratchU32[0] = bits;
    return encodeFp8FromF32Bits(f32BitsRoundToOdd(scratchF32[0]! / scale), spec);
  };
};

/**
 * Fills out[i] = at(i) for lo ≤ i < hi, given first = at(lo) and last = at(hi − 1), where every code's
 * indices form one run: a range whose ends agree is filled whole, any other is halved. A table of 65536
 * entries then costs a few thousand evaluations (one bisection per code boundary) instead of 65536.
 */
const fillRuns = (out: Uint8Array, lo: number, hi: number, first: number, last: number, at: (i: number) => number): void => {
  if (first === last) {
    out.fill(first, lo, hi);
    return;
  }
  if (hi - lo <= 2) {
    out[lo] = first;
    out[hi - 1] = last;
    return;
  }
  const mid = (lo + hi) >>> 1;
  fillRuns(out, lo, mid, first, at(mid - 1), at);
  fillRuns(out, mid, hi, at(mid), last, at);
};

/**
 * The code of each of 65536 16-bit indices whose f32 patterns `bitsOf(i)` grow with i within each sign half.
 * Encoding only grows with the pattern inside a half (then NaN), so each code covers one run of a half;
 * across halves it need not (e4m3fnuz's NaN 0x80 ends both).
 */
const runTable16 = (code: (bits: number) => number, bitsOf: (i: number) => number): Uint8Array => {
  const out = new Uint8Array(65536);
  const at = (i: number) => code(bitsOf(i));
  for (const lo of [0, 0x8000]) fillRuns(out, lo, lo + 0x8000, at(lo), at(lo + 0x7fff), at);
  return out;
};

/** Encode table for one scale: fp8 code of every 16-bit (f16 or bf16) code divided by the scale. */
export const fp8EncodeTable16 = (from: "f16" | "bf16", to: Fp8Dtype, scale: number): Uint8Array => {
  const code = f32Encoder(to, scale);
  if (from === "bf16") return runTable16(code, (c) => (c << 16) >>> 0);
  const f16 = f16ToF32Table();
  return runTable16(code, (c) => f16[c]!);
};

/**
 * The f32 → fp8 table for one scale: one entry per top 16 bits of an f32 pattern (a "bucket" of 65536
 * neighbouring floats) holding the code of the bucket's first float (bits 0..7), the code from the bucket's
 * threshold on (bits 8..15) and the threshold's low 16 bits (bits 16..31; 0 when the code never changes inside
 * the bucket). fp8 codes are at least 2^-3 apart in relative terms while a bucket spans 2^-7, so a bucket
 * holds at most one threshold; the build checks this and refuses scales so small that it would not hold.
 */
export const f32EncodeTable = (to: Fp8Dtype, scale: number): Uint32Array => {
  const code = f32Encoder(to, scale);
  const firsts = runTable16(code, (top) => (top << 16) >>> 0);
  const out = new Uint32Array(65536);
  for (let top = 0; top < 65536; top++) {
    const first = firsts[top]!;
    const base = (top << 16) >>> 0;
    out[top] = first | (first << 8);
    // Runs again: the bucket is constant when the next one (in the same sign half) starts with the same code.
    if ((top & 0x7fff) === 0x7fff ? code(base + 0xffff) === first : firsts[top + 1] === first) continue;
    // The first low half whose code differs from the bucket's first float, if there is one below 0x10000.
    let lo = 0;
    let hi = 0x10000;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (code(base + mid) === first) lo = mid;
      else hi = mid;
    }
    if (hi === 0x10000) continue;
    const above = code(base + hi);
    if (code(base + 0xffff) !== above) throw new RangeError(`fp8 scale ${scale} is too small to encode from f32`);
    out[top] = (first | (above << 8) | (hi << 16)) >>> 0;
  }
  return out;
};

/** Re-quantisation table between two fp8 formats or scales: code → code of the same real value. */
export const fp8RequantTable = (from: Fp8Dtype, fromScale: number, to: Fp8Dtype, toScale: number): Uint8Array => {
  const out = new Uint8Array(256);
  for (let c = 0; c < 256; c++) out[c] = encodeFp8((decodeFp8(c, from) * fromScale) / toScale, to);
  return out;
};
