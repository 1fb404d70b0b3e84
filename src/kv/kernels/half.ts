// Conversions among f32, f16 and bf16 on raw bit patterns, rounding to nearest even: the scalar rules the
// fp8 tables are built with. The array kernels run in WebAssembly (wasm/kernels-wat.ts) and follow the same
// rules: every wide-to-narrow one is IEEE (overflow → ±inf) except bf16 → f16, which saturates at ±65504 (a
// finite KV value must not become an infinity that poisons attention because another engine stores it narrower).

/** f32 bits → f16 bits: round to nearest even, |x| ≥ 65520 → ±inf, NaN stays a (quiet) NaN. */
export const f32BitsToF16Bits = (bits: number): number => {
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 | ((a >>> 13) & 0x3ff) : 0x7c00);
  if (a >= 0x477ff000) return sign | 0x7c00;
  // Normal in f16: rebias the exponent and round away the 13 low mantissa bits; a carry lands in the exponent.
  if (a >= 0x38800000) return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  // Subnormal in f16: count units of 2^-24.
  const shift = 126 - (a >>> 23);
  if (shift > 24) return sign;
  const m = (a & 0x7fffff) | 0x800000;
  let q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) q++;
  return sign | q;
};

/** f16 bits → f32 bits, exact. */
const f16BitsToF32Bits = (h: number): number => {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  let m = h & 0x3ff;
  if (e === 31) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  let k = 0;
  while ((m & 0x400) === 0) {
    m <<= 1;
    k++;
  }
  return (sign | ((113 - k) << 23) | ((m & 0x3ff) << 13)) >>> 0;
};

/** f32 bits → bf16 bits: round to nearest even (near f32 max that reaches ±inf), NaN stays a quiet NaN. */
export const f32BitsToBf16Bits = (bits: number): number =>
  (bits & 0x7fffffff) > 0x7f800000 ? (bits >>> 16) | 0x40 : (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;

const lazyTable = <T>(build: () => T): (() => T) => {
  let table: T | undefined;
  return () => (table ??= build());
};

/** f32 bits of every f16 code (builds the fp8 encode tables from f16). */
export const f16ToF32Table = lazyTable(() => {
  const out = new Uint32Array(65536);
  for (let c = 0; c < 65536; c++) out[c] = f16BitsToF32Bits(c);
  return out;
});

/** Values that left f16's exact range on the way: saturated (|x| > 65504) or below 2^-14 (rounded or flushed). */
export interface RangeReport {
  saturated: number;
  belowNormal: number;
}
