// e4m3fn and e4m3fnuz share their bit layout but fnuz's exponent bias is 8, not 7, so every code means half
// as much in fnuz: moving between them keeps the bytes, doubles (or halves) the scale and fixes three codes.
// fn → fnuz is lossless (−0 0x80 → +0 0x00, NaN 0x7F/0xFF → fnuz's NaN 0x80). fnuz → fn maps NaN 0x80 → 0x7F
// and saturates the two codes fn cannot hold, 0x7F/0xFF (±480 at the halved scale) → 0x7E/0xFE (±448).
// The rule runs 16 codes at a time in WebAssembly (wasm/kernels-wat.ts).
import { stageElements, wasm } from "./wasm/wasm-heap.ts";

/** Same bytes as e4m3fn at scale s → e4m3fnuz at scale 2s; bit-exact in value. */
export const e4m3fnToFnuz = (src: Uint8Array, dst: Uint8Array): void => stageElements(src, dst, 1, 1, wasm.e4m3fn_to_fnuz);

/** e4m3fnuz at scale s → e4m3fn at scale s/2; exact except ±480 saturating to ±448. */
export const e4m3fnuzToFn = (src: Uint8Array, dst: Uint8Array): void => stageElements(src, dst, 1, 1, wasm.e4m3fnuz_to_fn);
