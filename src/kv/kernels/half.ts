// Conversions among f32, f16 and bf16 on raw bit patterns, rounding to nearest even. Every wide-to-narrow
// rule here is the IEEE one (overflow → ±inf) except bf16 → f16, which saturates: a finite KV value must not
// become an infinity that poisons attention just because another engine stores it in a narrower format.

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

/** bf16 bits → f16 bits: exact for 2^-14 ≤ |x| ≤ 65504; below, f16 subnormals (round to even, flush under 2^-25); above, saturate to ±65504. */
const bf16BitsToF16Bits = (b: number): number => {
  const h = f32BitsToF16Bits((b << 16) >>> 0);
  return (h & 0x7fff) === 0x7c00 && (b & 0x7fff) !== 0x7f80 ? (h & 0x8000) | 0x7bff : h;
};

const lazyTable = <T>(build: () => T): (() => T) => {
  let table: T | undefined;
  return () => (table ??= build());
};

const table16 = <A extends Uint16Array | Uint32Array>(out: A, f: (code: number) => number): A => {
  for (let c = 0; c < 65536; c++) out[c] = f(c);
  return out;
};

export const f16ToF32Table = lazyTable(() => table16(new Uint32Array(65536), f16BitsToF32Bits));
const f16ToBf16Table = lazyTable(() => table16(new Uint16Array(65536), (h) => f32BitsToBf16Bits(f16BitsToF32Bits(h))));
// Each entry is the f16 code plus, in bit 16, "saturated" and, in bit 17, "below f16's normal range", so the
// conversion counts range events without a branch.
const bf16ToF16Table = lazyTable(() =>
  table16(new Uint32Array(65536), (b) => {
    const a = b & 0x7fff;
    const saturated = a >= 0x4780 && a < 0x7f80 ? 1 : 0;
    const belowNormal = a !== 0 && a < 0x3880 ? 1 : 0;
    return bf16BitsToF16Bits(b) | (saturated << 16) | (belowNormal << 17);
  }),
);

// The array kernels below move two 16-bit values per 32-bit load or store: on typed arrays the loop
// overhead per element, not arithmetic, is what limits throughput. Callers pass 4-byte-aligned buffers.

export const f32ToF16 = (src: Uint32Array, dst: Uint16Array): void => {
  const pairs = dst.length >>> 1;
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, pairs);
  for (let i = 0; i < pairs; i++) d32[i] = f32BitsToF16Bits(src[2 * i]!) | (f32BitsToF16Bits(src[2 * i + 1]!) << 16);
  if (dst.length & 1) dst[dst.length - 1] = f32BitsToF16Bits(src[dst.length - 1]!);
};

export const f16ToF32 = (src: Uint16Array, dst: Uint32Array): void => {
  const t = f16ToF32Table();
  const pairs = src.length >>> 1;
  const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  for (let i = 0; i < pairs; i++) {
    const x = s32[i]!;
    dst[2 * i] = t[x & 0xffff]!;
    dst[2 * i + 1] = t[x >>> 16]!;
  }
  if (src.length & 1) dst[src.length - 1] = t[src[src.length - 1]!]!;
};

export const f32ToBf16 = (src: Uint32Array, dst: Uint16Array): void => {
  const pairs = dst.length >>> 1;
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, pairs);
  for (let i = 0; i < pairs; i++) d32[i] = f32BitsToBf16Bits(src[2 * i]!) | (f32BitsToBf16Bits(src[2 * i + 1]!) << 16);
  if (dst.length & 1) dst[dst.length - 1] = f32BitsToBf16Bits(src[dst.length - 1]!);
};

export const bf16ToF32 = (src: Uint16Array, dst: Uint32Array): void => {
  const pairs = src.length >>> 1;
  const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  for (let i = 0; i < pairs; i++) {
    const x = s32[i]!;
    dst[2 * i] = x << 16;
    dst[2 * i + 1] = x & 0xffff0000;
  }
  if (src.length & 1) dst[src.length - 1] = src[src.length - 1]! << 16;
};

/** Maps 16-bit codes through a table, two per 32-bit load and store. */
const map16 = (src: Uint16Array, dst: Uint16Array, t: Uint16Array): void => {
  const pairs = src.length >>> 1;
  const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, pairs);
  for (let i = 0; i < pairs; i++) {
    const x = s32[i]!;
    d32[i] = t[x & 0xffff]! | (t[x >>> 16]! << 16);
  }
  if (src.length & 1) dst[src.length - 1] = t[src[src.length - 1]!]!;
};

export const f16ToBf16 = (src: Uint16Array, dst: Uint16Array): void => map16(src, dst, f16ToBf16Table());

/** Values that left f16's exact range on the way: saturated (|x| > 65504) or below 2^-14 (rounded or flushed). */
export interface RangeReport {
  saturated: number;
  belowNormal: number;
}

export const bf16ToF16 = (src: Uint16Array, dst: Uint16Array, report: RangeReport): void => {
  const t = bf16ToF16Table();
  const pairs = src.length >>> 1;
  const s32 = new Uint32Array(src.buffer, src.byteOffset, pairs);
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, pairs);
  let saturated = 0;
  let belowNormal = 0;
  for (let i = 0; i < pairs; i++) {
    const x = s32[i]!;
    const lo = t[x & 0xffff]!;
    const hi = t[x >>> 16]!;
    d32[i] = (lo & 0xffff) | (hi << 16);
    const flags = (lo | hi) >>> 16;
    if (flags !== 0) {
      saturated += ((lo >>> 16) & 1) + ((hi >>> 16) & 1);
      belowNormal += (lo >>> 17) + (hi >>> 17);
    }
  }
  if (src.length & 1) {
    const e = t[src[src.length - 1]!]!;
    dst[src.length - 1] = e & 0xffff;
    saturated += (e >>> 16) & 1;
    belowNormal += e >>> 17;
  }
  report.saturated += saturated;
  report.belowNormal += belowNormal;
};
