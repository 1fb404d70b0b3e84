// Picks the conversion kernel for a (dtype, scale) → (dtype, scale) pair and builds its tables once, so a
// layer converted run by run (per-head scales) pays for each table only once per distinct scale. The
// kernels run in WebAssembly over staged chunks (wasm/wasm-heap.ts); tables come from the scalar rules in
// half.ts and fp8.ts.
import { dtypeBytes, isFp8, type Fp8Dtype, type KvDtype } from "../descriptor.ts";
import { f32EncodeTable, fp8DecodePairTable, fp8DecodeTable, fp8EncodeTable16, fp8RequantTable, type WideDtype } from "./fp8.ts";
import { e4m3fnToFnuz, e4m3fnuzToFn } from "./fp8-reinterpret.ts";
import type { RangeReport } from "./half.ts";
import { countersAddress, type ElementKernel, readCounter, stageElements, useTable, wasm } from "./wasm/wasm-heap.ts";

/** Converts a run of elements from `src` into `dst` (sized for the target dtype); range events go to `report`. */
export type Converter = (src: Uint8Array, dst: Uint8Array, report: RangeReport) => void;

/** A converter running `kernel` chunk by chunk, with `table` (if any) at wasm address 0. */
const staged =
  (from: KvDtype, to: KvDtype, kernel: ElementKernel, table?: Uint8Array): Converter =>
  (src, dst) => {
    if (table !== undefined) useTable(table);
    stageElements(src, dst, dtypeBytes(from), dtypeBytes(to), kernel);
  };

const bytesOf = (table: Uint16Array | Uint32Array): Uint8Array => new Uint8Array(table.buffer, table.byteOffset, table.byteLength);

/** bf16 → f16 also counts the values that left f16's exact range (see half.ts). */
const bf16ToF16: Converter = (src, dst, report) =>
  stageElements(
    src,
    dst,
    2,
    2,
    (input, output, n) => wasm.bf16_to_f16(input, output, n, countersAddress()),
    () => {
      report.saturated += readCounter(0);
      report.belowNormal += readCounter(1);
    },
  );

const WIDE_KERNELS: Readonly<Record<string, ElementKernel>> = {
  "f32>f16": wasm.f32_to_f16,
  "f32>bf16": wasm.f32_to_bf16,
  "f16>f32": wasm.f16_to_f32,
  "bf16>f32": wasm.bf16_to_f32,
  "f16>bf16": wasm.f16_to_bf16,
};

const wideToWide = (from: WideDtype, to: WideDtype): Converter =>
  from === "bf16" && to === "f16" ? bf16ToF16 : staged(from, to, WIDE_KERNELS[`${from}>${to}`]!);

const fromFp8 = (from: Fp8Dtype, scale: number, to: WideDtype): Converter =>
  to === "f32"
    ? staged(from, to, wasm.fp8_to_32, bytesOf(fp8DecodeTable(from, scale, to)))
    : staged(from, to, wasm.fp8_to_16, bytesOf(fp8DecodePairTable(from, scale, to)));

const toFp8 = (from: WideDtype, to: Fp8Dtype, scale: number): Converter =>
  from === "f32"
    ? staged(from, to, wasm.f32_to_fp8, bytesOf(f32EncodeTable(to, scale)))
    : staged(from, to, wasm.map_16_to_8, fp8EncodeTable16(from, to, scale));

const fp8ToFp8 = (from: Fp8Dtype, fromScale: number, to: Fp8Dtype, toScale: number): Converter => {
  if (from === "fp8_e4m3fn" && to === "fp8_e4m3fnuz" && toScale === fromScale * 2) return (s, d) => e4m3fnToFnuz(s, d);
  if (from === "fp8_e4m3fnuz" && to === "fp8_e4m3fn" && toScale === fromScale / 2) return (s, d) => e4m3fnuzToFn(s, d);
  return staged(from, to, wasm.map_8, fp8RequantTable(from, fromScale, to, toScale));
};

/** The kernel for one pair; scales are 1 for the float dtypes. */
export const converterFor = (from: KvDtype, fromScale: number, to: KvDtype, toScale: number): Converter => {
  if (from === to && fromScale === toScale) return (s, d) => d.set(s);
  if (isFp8(from) && isFp8(to)) return fp8ToFp8(from, fromScale, to, toScale);
  if (isFp8(from)) return fromFp8(from, fromScale, to as WideDtype);
  if (isFp8(to)) return toFp8(from, to, toScale);
  return wideToWide(from, to as WideDtype);
};
