// Layout permutes inside a block: token-major NHD ↔ head-major HND, and V transposed (heads, dim, page) ↔
// HND (llama.cpp stores V that way without flash attention). They run in WebAssembly over staged chunks of
// whole blocks (wasm/wasm-heap.ts): JavaScript pays 100–150 ns per TypedArray.set call, more than moving a
// 256-byte head_dim row costs, and ~2 ns per element in a loop. Each kernel writes its destination
// contiguously, reads only the valid tokens and writes zeros in place of the rest.
import { type KernelShape, shapeBlockBytes, validTokens } from "./kernel-shape.ts";
import { stageUnits, wasm } from "./wasm/wasm-heap.ts";

const validOfBlock = (s: KernelShape) => (block: number) => validTokens(s, block);

/** (blocks, page, heads, dim) → (blocks, heads, page, dim). */
export const nhdToHnd = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => {
  const row = s.headDim * s.elemBytes;
  stageUnits(src, dst, shapeBlockBytes(s), s.blocks, validOfBlock(s), (input, output, units, valid) =>
    wasm.nhd_to_hnd(input, output, units, s.page, s.heads, row, valid),
  );
};

/** (blocks, heads, page, dim) → (blocks, page, heads, dim). */
export const hndToNhd = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => {
  const row = s.headDim * s.elemBytes;
  stageUnits(src, dst, shapeBlockBytes(s), s.blocks, validOfBlock(s), (input, output, units, valid) =>
    wasm.hnd_to_nhd(input, output, units, s.page, s.heads, row, valid),
  );
};

const TRANSPOSE = { 1: wasm.transpose_1, 2: wasm.transpose_2, 4: wasm.transpose_4 } as const;
const UNTRANSPOSE = { 1: wasm.untranspose_1, 2: wasm.untranspose_2, 4: wasm.untranspose_4 } as const;
/** Register-tile kernels and their tile edge, for 2- and 4-byte elements. */
const TILES = { 1: undefined, 2: { kernel: wasm.transpose_tiles_2, edge: 8 }, 4: { kernel: wasm.transpose_tiles_4, edge: 4 } } as const;

/**
 * Runs a V kernel over every (block, head) plane of `page × dim` elements: whole register tiles where every
 * token is valid and both sides are multiples of the tile edge, element by element otherwise. `inverse` is
 * the untranspose: (dim, page) → (page, dim).
 */
const perPlane = (inverse: boolean, src: Uint8Array, dst: Uint8Array, s: KernelShape): void => {
  const elementwise = (inverse ? UNTRANSPOSE : TRANSPOSE)[s.elemBytes];
  const tiles = TILES[s.elemBytes];
  const tiled = tiles !== undefined && s.page % tiles.edge === 0 && s.headDim % tiles.edge === 0;
  const [rows, cols] = inverse ? [s.headDim, s.page] : [s.page, s.headDim];
  stageUnits(
    src,
    dst,
    s.page * s.headDim * s.elemBytes,
    s.blocks * s.heads,
    (plane) => validTokens(s, Math.floor(plane / s.heads)),
    (input, output, units, valid) =>
      tiled && valid === s.page
        ? tiles.kernel(input, output, units, rows, cols)
        : elementwise(input, output, units, s.page, s.headDim, valid),
  );
};

/** V (blocks, heads, page, dim) → (blocks, heads, dim, page). */
export const transposeV = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => perPlane(false, src, dst, s);

/** V (blocks, heads, dim, page) → (blocks, heads, page, dim). */
export const untransposeV = (src: Uint8Array, dst: Uint8Array, s: KernelShape): void => perPlane(true, src, dst, s);
