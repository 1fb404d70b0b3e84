// The canonical wire form every translation passes through: per layer, K then V as separate planes, each
// head-major in 16-token pages (pages, heads, 16, dim), zero past `tokens`, in a stated dtype. One layer
// is one self-contained buffer, so layers can be sent and translated one at a time.
import { type KvDescriptor, type KvDtype, type KvLayout, type KvScales, nativeByteLength } from "./descriptor.ts";

export const CANONICAL_PAGE = 16;
export const CANONICAL_FORMAT = "canonical";

export const CANONICAL_LAYOUT: KvLayout = {
  tokenOrder: "HND",
  kvPacking: "planes",
  vTransposed: false,
  layerPacking: "per_layer",
};

/** KV in canonical form: `layers[l]` holds layer l's K plane followed by its V plane. */
export interface CanonicalKv {
  readonly descriptor: KvDescriptor;
  readonly layers: readonly Uint8Array[];
}

/** The canonical descriptor for the same KV; dtype and scales stay the source's unless a conversion asks. */
export const canonicalDescriptor = (d: KvDescriptor, dtype: KvDtype = d.dtype, scales: KvScales = d.scales): KvDescriptor => ({
  ...d,
  format: CANONICAL_FORMAT,
  pageSize: CANONICAL_PAGE,
  layout: CANONICAL_LAYOUT,
  dtype,
  scales,
});

export const canonicalLayerBytes = (d: KvDescriptor): number => nativeByteLength(canonicalDescriptor(d)) / d.layers;
