// Public API of the KV data plane: descriptors, native presets, canonical codecs, translation planning,
// and the chunking/checksum helpers the transfer channels use.
export { CANONICAL_FORMAT, CANONICAL_LAYOUT, CANONICAL_PAGE, type CanonicalKv, canonicalDescriptor, canonicalLayerBytes } from "./canonical.ts";
export { convertCanonicalLayer } from "./canonical-convert.ts";
export { hashableBuffer, kvChecksum } from "./checksum/kv-hash.ts";
export { CHUNK_ENVELOPE_BYTES, chunkAt, chunkCount, chunkSizeFor, DEFAULT_CHUNK_BYTES } from "./chunking.ts";
export { fromCanonical, layerFromCanonical, layerToCanonical, toCanonical } from "./codec.ts";
export {
  descriptorProblem,
  dtypeBytes,
  formatLabel,
  type Fp8Dtype,
  type KvDescriptor,
  type KvDtype,
  type KvLayout,
  type KvScales,
  nativeByteLength,
  NO_SCALES,
  scaledScales,
  shapeMismatch,
} from "./descriptor.ts";
export type { ErrorBound } from "./error-bound.ts";
export type { RangeReport } from "./kernels/half.ts";
export { KvFormatError } from "./kv-format-error.ts";
export { type KvShape, type NativeFormatName, nativeFormats } from "./native-formats.ts";
export {
  type PlanStep,
  planTranslation,
  translate,
  translateLayer,
  type TranslationPlan,
  type TranslationRefusal,
  type TranslationResult,
} from "./planner.ts";
