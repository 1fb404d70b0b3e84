// Picks the conversion kernel for a (dtype, scale) → (dtype, scale) pair and builds its tables once, so a
// layer converted run by run (per-head scales) pays for each table only once per distinct scale.
import { isFp8, type Fp8Dtype, type KvDtype } from "../descriptor.ts";
import { fp8ByTable, fp8DecodeTable, fp8EncodeTable16, fp8RequantTable, f32ToFp8, fp8ToF32, fp8ToWide16, wide16ToFp8, type WideDtype } from "./fp8.ts";
import { e4m3fnToFnuz, e4m3fnuzToFn } from "./fp8-reinterpret.ts";
import { bf16ToF16, bf16ToF32, f16ToBf16, f16ToF32, f32ToBf16, f32ToF16, type RangeReport } from "./half.ts";

/** Converts a run of elements from `src` into `dst` (sized for the target dtype); range events go to `report`. */
export type Converter = (src: Uint8Array, dst: Uint8Array, report: RangeReport) => void;

type View<T> = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T;

const viewOf = <T>(Ctor: View<T> & { BYTES_PER_ELEMENT: number }, bytes: Uint8Array): T =>
  new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);

/** Runs `kernel` on aligned buffers, copying through aligned scratch when the caller's bytes are misaligned. */
const aligned =
  (kernel: Converter): Converter =>
  (src, dst, report) => {
    const s = src.byteOffset % 4 === 0 ? src : src.slice();
    if (dst.byteOffset % 4 === 0) return kernel(s, dst, report);
    const out = new Uint8Array(dst.length);
    kernel(s, out, report);
    dst.set(out);
  };

const wideToWide = (from: WideDtype, to: WideDtype): Converter => {
  const pair = `${from}>${to}`;
  switch (pair) {
    case "f32>f16":
      return (s, d) => f32ToF16(viewOf(Uint32Array, s), viewOf(Uint16Array, d));
    case "f32>bf16":
      return (s, d) => f32ToBf16(viewOf(Uint32Array, s), viewOf(Uint16Array, d));
    case "f16>f32":
      return (s, d) => f16ToF32(viewOf(Uint16Array, s), viewOf(Uint32Array, d));
    case "bf16>f32":
      return (s, d) => bf16ToF32(viewOf(Uint16Array, s), viewOf(Uint32Array, d));
    case "f16>bf16":
      return (s, d) => f16ToBf16(viewOf(Uint16Array, s), viewOf(Uint16Array, d));
    default:
      return (s, d, r) => bf16ToF16(viewOf(Uint16Array, s), viewOf(Uint16Array, d), r);
  }
};

const fromFp8 = (from: Fp8Dtype, scale: number, to: WideDtype): Converter => {
  if (to === "f32") {
    const table = fp8DecodeTable(from, scale, to) as Uint32Array;
    return (s, d) => fp8ToF32(s, viewOf(Uint32Array, d), table);
  }
  const table = fp8DecodeTable(from, scale, to) as Uint16Array;
  return (s, d) => fp8ToWide16(s, viewOf(Uint16Array, d), table);
};

const toFp8 = (from: WideDtype, to: Fp8Dtype, scale: number): Converter => {
  if (from === "f32") return (s, d) => f32ToFp8(viewOf(Float32Array, s), d, to, scale);
  const table = fp8EncodeTable16(from, to, scale);
  return (s, d) => wide16ToFp8(viewOf(Uint16Array, s), d, table);
};

const fp8ToFp8 = (from: Fp8Dtype, fromScale: number, to: Fp8Dtype, toScale: number): Converter => {
  if (from === "fp8_e4m3fn" && to === "fp8_e4m3fnuz" && toScale === fromScale * 2) return (s, d) => e4m3fnToFnuz(s, d);
  if (from === "fp8_e4m3fnuz" && to === "fp8_e4m3fn" && toScale === fromScale / 2) return (s, d) => e4m3fnuzToFn(s, d);
  const table = fp8RequantTable(from, fromScale, to, toScale);
  return (s, d) => fp8ByTable(s, d, table);
};

/** The kernel for one pair; scales are 1 for the float dtypes. */
export const converterFor = (from: KvDtype, fromScale: number, to: KvDtype, toScale: number): Converter => {
  if (from === to && fromScale === toScale) return (s, d) => d.set(s);
  if (isFp8(from) && isFp8(to)) return fp8ToFp8(from, fromScale, to, toScale);
  if (isFp8(from)) return aligned(fromFp8(from, fromScale, to as WideDtype));
  if (isFp8(to)) return aligned(toFp8(from, to, toScale));
  return aligned(wideToWide(from, to as WideDtype));
};
