// The kernels' WebAssembly instance and the staging that feeds it. Kernels only see wasm memory, so the
// caller's bytes are copied in and out in chunks that stay in cache (TypedArray.set, a memmove each way);
// a kernel then costs about one extra copy of the data, far less than a JavaScript loop over typed arrays.
//
// Memory: lookup tables at 0 (TABLE_BYTES), then the input stage and the output stage. The stages start off a
// 4 KiB boundary (0x400 and 0xC00 into a page): on the AMD EPYC measured, a memmove whose source and
// destination share a page offset runs ~10× slower, and large ArrayBuffers start on page boundaries.
import { compileBase64, instantiate, type WasmMemory, WASM_PAGE } from "../../wasm-api.ts";
import { KERNELS_WASM_BASE64 } from "./kernels-wasm.ts";
import { OVERRUN_BYTES, TABLE_BYTES } from "./kernels-wat.ts";

export type ElementKernel = (input: number, output: number, n: number) => void;
type UnitKernel = (input: number, output: number, units: number, page: number, dim: number, valid: number) => void;

interface Exports {
  readonly memory: WasmMemory;
  readonly f16_to_f32: ElementKernel;
  readonly bf16_to_f32: ElementKernel;
  readonly f32_to_f16: ElementKernel;
  readonly f32_to_bf16: ElementKernel;
  readonly f16_to_bf16: ElementKernel;
  readonly bf16_to_f16: (input: number, output: number, n: number, counts: number) => void;
  readonly fp8_to_16: ElementKernel;
  readonly fp8_to_32: ElementKernel;
  readonly map_8: ElementKernel;
  readonly map_16_to_8: ElementKernel;
  readonly f32_to_fp8: ElementKernel;
  readonly e4m3fn_to_fnuz: ElementKernel;
  readonly e4m3fnuz_to_fn: ElementKernel;
  readonly nhd_to_hnd: (input: number, output: number, units: number, page: number, heads: number, row: number, valid: number) => void;
  readonly hnd_to_nhd: (input: number, output: number, units: number, page: number, heads: number, row: number, valid: number) => void;
  readonly transpose_1: UnitKernel;
  readonly transpose_2: UnitKernel;
  readonly transpose_4: UnitKernel;
  readonly untranspose_1: UnitKernel;
  readonly untranspose_2: UnitKernel;
  readonly untranspose_4: UnitKernel;
  readonly transpose_tiles_2: (input: number, output: number, units: number, rows: number, cols: number) => void;
  readonly transpose_tiles_4: (input: number, output: number, units: number, rows: number, cols: number) => void;
}

export const wasm = instantiate<Exports>(compileBase64(KERNELS_WASM_BASE64));

/** Room past each stage for a kernel's overrun (OVERRUN_BYTES) and for two 32-bit counters. */
const SLACK = 0x400;
/** Chunk size: big enough that a call's fixed cost vanishes, small enough to stay in L2. */
const DEFAULT_STAGE = 0x20000;

let stageBytes = 0;
let inputAt = 0;
let outputAt = 0;
/** Two 32-bit counters a kernel may report (bf16 → f16), after the output stage's slack. */
let countersAt = 0;
let heap = new Uint8Array(0);
let counters = new Uint32Array(0);

/** Makes each stage hold at least `bytes`, growing wasm memory when it must. */
const reserve = (bytes: number): void => {
  if (bytes <= stageBytes) return;
  stageBytes = Math.ceil(Math.max(bytes, DEFAULT_STAGE) / WASM_PAGE) * WASM_PAGE;
  inputAt = TABLE_BYTES + 0x400;
  outputAt = inputAt + stageBytes + 0x800;
  countersAt = outputAt + stageBytes + SLACK;
  const need = countersAt + SLACK;
  const have = wasm.memory.buffer.byteLength;
  if (need > have) wasm.memory.grow(Math.ceil((need - have) / WASM_PAGE));
  heap = new Uint8Array(wasm.memory.buffer);
  counters = new Uint32Array(wasm.memory.buffer, countersAt, 2);
};
reserve(DEFAULT_STAGE);

/** Where a kernel writes its two counters, and what it wrote there. */
export const countersAddress = (): number => countersAt;
export const readCounter = (i: 0 | 1): number => counters[i]!;

/** Copies a lookup table to address 0 unless it is already there. */
let loadedTable: Uint8Array | undefined;
export const useTable = (table: Uint8Array): void => {
  if (loadedTable === table) return;
  heap.set(table, 0);
  loadedTable = table;
};

/**
 * Runs an element-wise kernel over all of `src` (elements of `inBytes`) into `dst` (elements of `outBytes`),
 * one stage-sized chunk at a time; `after` runs after each chunk (to collect counters).
 */
export const stageElements = (
  src: Uint8Array,
  dst: Uint8Array,
  inBytes: number,
  outBytes: number,
  kernel: ElementKernel,
  after?: () => void,
): void => {
  const n = src.length / inBytes;
  const chunk = Math.floor(stageBytes / Math.max(inBytes, outBytes) / 64) * 64;
  for (let first = 0; first < n; first += chunk) {
    const count = Math.min(chunk, n - first);
    const inEnd = inputAt + count * inBytes;
    heap.set(src.subarray(first * inBytes, (first + count) * inBytes), inputAt);
    heap.fill(0, inEnd, inEnd + OVERRUN_BYTES);
    kernel(inputAt, outputAt, count);
    dst.set(heap.subarray(outputAt, outputAt + count * outBytes), first * outBytes);
    after?.();
  }
};

/**
 * Runs a layout kernel over `units` equal units of `unitBytes` (same size in and out), batching neighbours
 * with the same count of valid tokens: `kernel(input, output, count, valid)`.
 */
export const stageUnits = (
  src: Uint8Array,
  dst: Uint8Array,
  unitBytes: number,
  units: number,
  validOf: (unit: number) => number,
  kernel: (input: number, output: number, count: number, valid: number) => void,
): void => {
  if (unitBytes === 0) return;
  reserve(unitBytes);
  const perStage = Math.floor(stageBytes / unitBytes);
  for (let first = 0; first < units; ) {
    const valid = validOf(first);
    let count = 1;
    while (count < perStage && first + count < units && validOf(first + count) === valid) count++;
    const bytes = count * unitBytes;
    heap.set(src.subarray(first * unitBytes, first * unitBytes + bytes), inputAt);
    kernel(inputAt, outputAt, count, valid);
    dst.set(heap.subarray(outputAt, outputAt + bytes), first * unitBytes);
    first += count;
  }
};
