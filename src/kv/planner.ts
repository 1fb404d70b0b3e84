// Decides, before any byte moves, whether KV in one format can become KV in another and at what cost in
// exactness: a plan of named steps through canonical, each exact or with its error bound, or a refusal
// naming both formats. Tandem translates or refuses; it never hands an engine bytes it cannot read.
import { canonicalDescriptor } from "./canonical.ts";
import { convertCanonicalLayer } from "./canonical-convert.ts";
import { layerFromCanonical, layerToCanonical } from "./codec.ts";
import {
  descriptorProblem,
  formatLabel,
  isFp8,
  type KvDescriptor,
  nativeByteLength,
  sameScales,
  scaledScales,
  shapeMismatch,
} from "./descriptor.ts";
import { BF16_TO_F16_BOUND, type ErrorBound, FNUZ_TO_FN_BOUND, roundingBound } from "./error-bound.ts";
import type { RangeReport } from "./kernels/half.ts";
import { KvFormatError } from "./kv-format-error.ts";

export interface PlanStep {
  readonly kind: "copy" | "to_canonical" | "convert" | "from_canonical";
  readonly name: string;
  readonly exact: boolean;
  /** Present exactly when the step is lossy. */
  readonly bound?: ErrorBound;
}

export interface TranslationPlan {
  readonly refused: false;
  readonly from: KvDescriptor;
  readonly to: KvDescriptor;
  readonly steps: readonly PlanStep[];
  readonly exact: boolean;
}

export interface TranslationRefusal {
  readonly refused: true;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

const maxScale = (d: KvDescriptor): number => (d.scales.kind === "none" ? 1 : Math.max(...d.scales.k, ...d.scales.v));

/** The dtype step between the two canonical forms: absent, a step, or why none exists. */
const conversionStep = (from: KvDescriptor, to: KvDescriptor): PlanStep | undefined | string => {
  const name = `${from.dtype} → ${to.dtype}`;
  if (from.dtype === to.dtype && sameScales(from.scales, to.scales)) return undefined;
  if (isFp8(from.dtype) && from.scales.kind === "none") return `${from.dtype} without scales cannot be dequantised`;
  if (isFp8(to.dtype) && to.scales.kind === "none") return `${to.dtype} target has no scales to quantise with`;
  const lossy = (bound: ErrorBound, what = name): PlanStep => ({ kind: "convert", name: what, exact: false, bound });
  if (from.dtype === "fp8_e4m3fn" && to.dtype === "fp8_e4m3fnuz" && sameScales(scaledScales(from.scales, 2), to.scales)) {
    return { kind: "convert", name: `${name} (same bytes, scale ×2)`, exact: true };
  }
  if (from.dtype === "fp8_e4m3fnuz" && to.dtype === "fp8_e4m3fn" && sameScales(scaledScales(from.scales, 0.5), to.scales)) {
    return lossy(FNUZ_TO_FN_BOUND, `${name} (same bytes, scale ×½)`);
  }
  if (to.dtype === "f32" && (from.dtype === "f16" || from.dtype === "bf16")) return { kind: "convert", name, exact: true };
  if (from.dtype === "bf16" && to.dtype === "f16") return lossy(BF16_TO_F16_BOUND);
  return lossy(roundingBound(to.dtype, maxScale(to)), from.dtype === to.dtype ? `${name} (re-quantise to new scales)` : name);
};

/** A plan to turn KV described by `from` into KV described by `to`, or why that cannot be done. */
export const planTranslation = (from: KvDescriptor, to: KvDescriptor): TranslationPlan | TranslationRefusal => {
  const refuse = (reason: string): TranslationRefusal => ({ refused: true, from: formatLabel(from), to: formatLabel(to), reason });
  const problem = descriptorProblem(from) ?? descriptorProblem(to) ?? shapeMismatch(from, to);
  if (problem !== undefined) return refuse(problem);
  const conversion = conversionStep(canonicalDescriptor(from), canonicalDescriptor(to));
  if (typeof conversion === "string") return refuse(conversion);
  const [a, b] = [from.layout, to.layout];
  const sameLayout =
    from.pageSize === to.pageSize &&
    a.tokenOrder === b.tokenOrder &&
    a.kvPacking === b.kvPacking &&
    a.vTransposed === b.vTransposed &&
    a.layerPacking === b.layerPacking;
  const steps: PlanStep[] =
    sameLayout && conversion === undefined
      ? [{ kind: "copy", name: `${formatLabel(from)} → ${formatLabel(to)} (same bytes)`, exact: true }]
      : [
          { kind: "to_canonical", name: `${formatLabel(from)} → canonical`, exact: true },
          ...(conversion === undefined ? [] : [conversion]),
          { kind: "from_canonical", name: `canonical → ${formatLabel(to)}`, exact: true },
        ];
  return { refused: false, from, to, steps, exact: steps.every((s) => s.exact) };
};

export interface TranslationResult {
  readonly bytes: Uint8Array;
  /** Range events of the conversion step (bf16 → f16 counts saturated and below-normal values). */
  readonly report: RangeReport;
}

/** Translates one layer into its place in `out` (a buffer of the target's native size), for pipelining. */
export const translateLayer = (plan: TranslationPlan, bytes: Uint8Array, layer: number, out: Uint8Array, report: RangeReport): void => {
  const canonical = layerToCanonical(plan.from, bytes, layer);
  const converted = plan.steps.some((s) => s.kind === "convert")
    ? convertCanonicalLayer(canonical, canonicalDescriptor(plan.from), canonicalDescriptor(plan.to), layer, report)
    : canonical;
  layerFromCanonical(converted, plan.to, layer, out);
};

/** Runs a plan over a whole native buffer; a refusal throws the typed error naming both formats. */
export const translate = (plan: TranslationPlan | TranslationRefusal, bytes: Uint8Array): TranslationResult => {
  if (plan.refused) throw new KvFormatError(plan.from, plan.to, plan.reason);
  const report: RangeReport = { saturated: 0, belowNormal: 0 };
  if (plan.steps[0]!.kind === "copy") {
    if (bytes.length !== nativeByteLength(plan.from)) {
      throw new KvFormatError(formatLabel(plan.from), formatLabel(plan.to), `buffer holds ${bytes.length} bytes, the descriptor needs ${nativeByteLength(plan.from)}`);
    }
    return { bytes: bytes.slice(), report };
  }
  const out = new Uint8Array(nativeByteLength(plan.to));
  for (let layer = 0; layer < plan.from.layers; layer++) translateLayer(plan, bytes, layer, out, report);
  return { bytes: out, report };
};
