// fp8 KV needs a scale per layer for K and V (real = code × scale). When KV becomes fp8 on the wire the
// scales are chosen here: kept when the dtype does not change, the exact ×2 / ×½ between the two e4m3
// flavours, otherwise amax / the format's largest finite value per layer and plane (vLLM's per-tensor
// k_scale / v_scale), so nothing saturates.
import { canonicalDescriptor } from "../../kv/canonical.ts";
import { convertCanonicalLayer } from "../../kv/canonical-convert.ts";
import { layerToCanonical } from "../../kv/codec.ts";
import { type Fp8Dtype, isFp8, type KvDescriptor, type KvDtype, type KvScales, NO_SCALES, scaledScales } from "../../kv/descriptor.ts";

const FP8_MAX: Readonly<Record<Fp8Dtype, number>> = { fp8_e4m3fn: 448, fp8_e4m3fnuz: 240, fp8_e5m2: 57344 };

const amax = (values: Float32Array, from: number, to: number): number => {
  let m = 0;
  for (let i = from; i < to; i++) {
    const a = Math.abs(values[i]!);
    if (a > m && Number.isFinite(a)) m = a;
  }
  return m;
};

/** Scales for the KV in `native` (described by `from`) once converted to `to`; none unless `to` is fp8. */
export const wireScales = (from: KvDescriptor, native: Uint8Array, to: KvDtype): KvScales => {
  if (!isFp8(to)) return NO_SCALES;
  if (from.dtype === to) return from.scales;
  if (from.dtype === "fp8_e4m3fn" && to === "fp8_e4m3fnuz") return scaledScales(from.scales, 2);
  if (from.dtype === "fp8_e4m3fnuz" && to === "fp8_e4m3fn") return scaledScales(from.scales, 0.5);
  const canonical = canonicalDescriptor(from);
  const f32 = canonicalDescriptor(from, "f32", NO_SCALES);
  const k: number[] = [];
  const v: number[] = [];
  const report = { saturated: 0, belowNormal: 0 };
  for (let layer = 0; layer < from.layers; layer++) {
    const bytes = convertCanonicalLayer(layerToCanonical(from, native, layer), canonical, f32, layer, report);
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const half = values.length / 2;
    const scale = (m: number) => (m > 0 ? m / FP8_MAX[to] : 1);
    k.push(scale(amax(values, 0, half)));
    v.push(scale(amax(values, half, values.length)));
  }
  return { kind: "per_tensor", k, v };
};
