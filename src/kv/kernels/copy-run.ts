// The one primitive every layout kernel is made of: move a contiguous run of bytes. TypedArray.set is a
// memmove but costs a view allocation and a builtin call, so short runs go through a plain loop instead.
// Views are made with the constructor on a hoisted buffer rather than subarray(), which skips the species
// lookup and the buffer getter per run (~25% faster on 256-byte rows).
const SET_MIN_BYTES = 96;

type CopyRun = (srcOff: number, dstOff: number, n: number) => void;

/** A copier from `src` to `dst`: `copy(srcOff, dstOff, n)` moves n bytes. */
export const runCopier = (src: Uint8Array, dst: Uint8Array): CopyRun => {
  const buffer = src.buffer;
  const base = src.byteOffset;
  return (srcOff, dstOff, n) => {
    if (n >= SET_MIN_BYTES) {
      dst.set(new Uint8Array(buffer, base + srcOff, n), dstOff);
      return;
    }
    for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i]!;
  };
};

/** Copies `count` runs of `runBytes`, the i-th from `srcOff + i × srcStride` to `dstOff + i × dstStride`. */
export const copyStrided = (
  src: Uint8Array,
  srcOff: number,
  srcStride: number,
  dst: Uint8Array,
  dstOff: number,
  dstStride: number,
  count: number,
  runBytes: number,
): void => {
  const copy = runCopier(src, dst);
  for (let i = 0; i < count; i++) copy(srcOff + i * srcStride, dstOff + i * dstStride, runBytes);
};
