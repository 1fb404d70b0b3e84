// Layout permutes inside a block: token-major NHD ↔ head-major HND, and V transposed (heads, dim, page) ↔
// HND (llama.cpp stores V that way without flash attention). Loops walk the destination contiguously so
// writes stream; whole head_dim rows move as one run.
import { runCopier } from "./copy-run.ts";
import { type KernelShape, shapeBlockBytes, validTokens } from "./kernel-shape.ts";

/** (blocks, page, heads, dim) → (blocks, heads, page, dim). */
export const nhdToHnd = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => {
  const copy = runCopier(src, dst);
  const row = s.headDim * s.elemBytes;
  const block = shapeBlockBytes(s);
  const headStride = s.heads * row;
  for (let b = 0; b < s.blocks; b++) {
    const base = b * block;
    const valid = validTokens(s, b);
    for (let h = 0; h < s.heads; h++) {
      let d = base + h * s.page * row;
      let from = base + h * row;
      for (let t = 0; t < valid; t++, d += row, from += headStride) copy(from, d, row);
      if (valid < s.page) dst.fill(0, d, base + (h + 1) * s.page * row);
    }
  }
};

/** (blocks, heads, page, dim) → (blocks, page, heads, dim). */
export const hndToNhd = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => {
  const copy = runCopier(src, dst);
  const row = s.headDim * s.elemBytes;
  const block = shapeBlockBytes(s);
  const headStride = s.page * row;
  for (let b = 0; b < s.blocks; b++) {
    const base = b * block;
    const valid = validTokens(s, b);
    let d = base;
    for (let t = 0; t < valid; t++) {
      for (let h = 0, from = base + t * row; h < s.heads; h++, d += row, from += headStride) copy(from, d, row);
    }
    if (valid < s.page) dst.fill(0, d, base + block);
  }
};

// Element-wise moves must index by element, and V8 optimises a loop best when it only ever sees one typed
// array type, so each element width gets its own closure (and with it its own type feedback).
type Elements = Uint8Array | Uint16Array | Uint32Array;

const makeTranspose = () => (src: Elements, dst: Elements, s: KernelShape): void => {
  const { page, headDim } = s;
  const plane = page * headDim;
  for (let b = 0; b < s.blocks; b++) {
    const valid = validTokens(s, b);
    for (let h = 0; h < s.heads; h++) {
      const base = (b * s.heads + h) * plane;
      for (let d = 0; d < headDim; d++) {
        const out = base + d * page;
        for (let t = 0; t < valid; t++) dst[out + t] = src[base + t * headDim + d]!;
        if (valid < page) dst.fill(0, out + valid, out + page);
      }
    }
  }
};

const makeUntranspose = () => (src: Elements, dst: Elements, s: KernelShape): void => {
  const { page, headDim } = s;
  const plane = page * headDim;
  for (let b = 0; b < s.blocks; b++) {
    const valid = validTokens(s, b);
    for (let h = 0; h < s.heads; h++) {
      const base = (b * s.heads + h) * plane;
      for (let t = 0; t < valid; t++) {
        const out = base + t * headDim;
        for (let d = 0; d < headDim; d++) dst[out + d] = src[base + d * page + t]!;
      }
      if (valid < page) dst.fill(0, base + valid * headDim, base + plane);
    }
  }
};

const transposers = { 1: makeTranspose(), 2: makeTranspose(), 4: makeTranspose() };
const untransposers = { 1: makeUntranspose(), 2: makeUntranspose(), 4: makeUntranspose() };

const view = (bytes: Uint8Array, elemBytes: 1 | 2 | 4): Elements => {
  const aligned = bytes.byteOffset % elemBytes === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset } = aligned;
  const n = aligned.byteLength / elemBytes;
  return elemBytes === 1
    ? new Uint8Array(buffer, byteOffset, n)
    : elemBytes === 2
      ? new Uint16Array(buffer, byteOffset, n)
      : new Uint32Array(buffer, byteOffset, n);
};

/** Runs an element-wise kernel on byte buffers, going through an aligned copy when a buffer is misaligned. */
const elementwise = (
  kernel: (src: Elements, dst: Elements, s: KernelShape) => void,
  src: Uint8Array,
  dst: Uint8Array,
  s: KernelShape,
): void => {
  if (dst.byteOffset % s.elemBytes === 0) {
    kernel(view(src, s.elemBytes), view(dst, s.elemBytes), s);
    return;
  }
  const out = new Uint8Array(dst.length);
  kernel(view(src, s.elemBytes), view(out, s.elemBytes), s);
  dst.set(out);
};

/** V (blocks, heads, page, dim) → (blocks, heads, dim, page). */
export const transposeV = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void =>
  elementwise(transposers[s.elemBytes], src, dst, s);

/** V (blocks, heads, dim, page) → (blocks, heads, page, dim). */
export const untransposeV = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void =>
  elementwise(untransposers[s.elemBytes], src, dst, s);
