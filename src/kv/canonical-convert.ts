// Dtype conversion of one canonical layer. It runs on canonical bytes so per-head scales line up with
// (page, head) runs whatever layout the producer or consumer uses.
import { canonicalLayerBytes } from "./canonical.ts";
import { dtypeBytes, type KvDescriptor, scaleOf } from "./descriptor.ts";
import { type Converter, converterFor } from "./kernels/convert.ts";
import type { RangeReport } from "./kernels/half.ts";

/** Layer `layer` of canonical KV described by `from`, converted to the dtype and scales of `to`. */
export const convertCanonicalLayer = (
  layerBytes: Uint8Array,
  from: KvDescriptor,
  to: KvDescriptor,
  layer: number,
  report: RangeReport,
): Uint8Array => {
  const out = new Uint8Array(canonicalLayerBytes(to));
  const converters = new Map<string, Converter>();
  const converter = (fromScale: number, toScale: number): Converter => {
    const key = `${fromScale}/${toScale}`;
    let c = converters.get(key);
    if (c === undefined) converters.set(key, (c = converterFor(from.dtype, fromScale, to.dtype, toScale)));
    return c;
  };
  // With per-head scales a run is one (page, head) of 16 × headDim elements, and run r belongs to head
  // r mod kvHeads; with one scale per plane the whole plane is one run.
  const perHead = from.scales.kind === "per_head" || to.scales.kind === "per_head";
  const planeElements = layerBytes.length / 2 / dtypeBytes(from.dtype);
  const runElements = perHead ? 16 * from.headDim : planeElements;
  const runs = runElements === 0 ? 0 : planeElements / runElements;
  const inRun = runElements * dtypeBytes(from.dtype);
  const outRun = runElements * dtypeBytes(to.dtype);
  // Runs of one head follow each other, so a kernel's lookup table is loaded once per head, not once per run.
  const heads = Math.min(runs, perHead ? from.kvHeads : 1);
  for (const plane of [0, 1] as const) {
    for (let head = 0; head < heads; head++) {
      const convert = converter(scaleOf(from, layer, plane, head), scaleOf(to, layer, plane, head));
      for (let r = head; r < runs; r += heads) {
        const run = plane * runs + r;
        convert(layerBytes.subarray(run * inRun, (run + 1) * inRun), out.subarray(run * outRun, (run + 1) * outRun), report);
      }
    }
  }
  return out;
};
