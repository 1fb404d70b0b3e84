// e4m3fn and e4m3fnuz share their bit layout but fnuz's exponent bias is 8, not 7, so every code means half
// as much in fnuz: moving between them keeps the bytes, doubles (or halves) the scale and fixes three codes.
// fn → fnuz is lossless (−0 0x80 → +0 0x00, NaN 0x7F/0xFF → fnuz's NaN 0x80). fnuz → fn maps NaN 0x80 → 0x7F
// and saturates the two codes fn cannot hold, 0x7F/0xFF (±480 at the halved scale) → 0x7E/0xFE (±448).

const e4m3fnToFnuzCode = (c: number): number => (c === 0x80 ? 0x00 : (c & 0x7f) === 0x7f ? 0x80 : c);

const e4m3fnuzToFnCode = (c: number): number => (c === 0x80 ? 0x7f : (c & 0x7f) === 0x7f ? c - 1 : c);

// Most words hold none of the three codes, so whole 32-bit words are tested at once (a byte equals 0x80, or
// has its low seven bits set) and only the rare word that does is fixed byte by byte.
const hasZeroByte = (x: number): number => (x - 0x01010101) & ~x & 0x80808080;

const reinterpret = (src: Uint8Array, dst: Uint8Array, code: (c: number) => number): void => {
  const n = dst.length;
  let i = 0;
  if (src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    const words = n >>> 2;
    const s32 = new Uint32Array(src.buffer, src.byteOffset, words);
    const d32 = new Uint32Array(dst.buffer, dst.byteOffset, words);
    for (let w = 0; w < words; w++) {
      const x = s32[w]!;
      if (hasZeroByte(x ^ 0x80808080) === 0 && hasZeroByte(~(x | 0x80808080)) === 0) d32[w] = x;
      else {
        const b = w << 2;
        dst[b] = code(src[b]!);
        dst[b + 1] = code(src[b + 1]!);
        dst[b + 2] = code(src[b + 2]!);
        dst[b + 3] = code(src[b + 3]!);
      }
    }
    i = words << 2;
  }
  for (; i < n; i++) dst[i] = code(src[i]!);
};

/** Same bytes as e4m3fn at scale s → e4m3fnuz at scale 2s; bit-exact in value. */
export const e4m3fnToFnuz = (src: Uint8Array, dst: Uint8Array): void => reinterpret(src, dst, e4m3fnToFnuzCode);

/** e4m3fnuz at scale s → e4m3fn at scale s/2; exact except ±480 saturating to ±448. */
export const e4m3fnuzToFn = (src: Uint8Array, dst: Uint8Array): void => reinterpret(src, dst, e4m3fnuzToFnCode);
