// What a dtype conversion promises: an error bound for values inside the target's range and a rule for
// everything else. Tests hold the kernels to exactly these numbers, and plans show them to operators.
import type { KvDtype } from "./descriptor.ts";

/**
 * For finite x whose magnitude is within the target's finite range: |out − x| ≤ max(relative × |x|, absolute),
 * where x and out are real values (code × scale for fp8). `rule` says what happens outside that range.
 */
export interface ErrorBound {
  readonly relative: number;
  readonly absolute: number;
  readonly rule: string;
}

/** Significand bits (with the implicit one): round-to-nearest loses at most half an ulp, 2^-bits relative. */
const PRECISION: Readonly<Record<KvDtype, number>> = {
  f32: 24,
  f16: 11,
  bf16: 8,
  fp8_e4m3fn: 4,
  fp8_e4m3fnuz: 4,
  fp8_e5m2: 3,
};

/** Half the smallest subnormal at scale 1: the absolute error of rounding near zero. */
const HALF_SUBNORMAL: Readonly<Record<KvDtype, number>> = {
  f32: 2 ** -150,
  f16: 2 ** -25,
  bf16: 2 ** -134,
  fp8_e4m3fn: 2 ** -10,
  fp8_e4m3fnuz: 2 ** -11,
  fp8_e5m2: 2 ** -17,
};

const RULES: Readonly<Record<KvDtype, string>> = {
  f32: "±inf and NaN are kept",
  f16: "|x| ≥ 65520 → ±inf; ±inf and NaN are kept",
  bf16: "values rounding past the bf16 maximum → ±inf; ±inf and NaN are kept",
  fp8_e4m3fn: "|x| > 448 × scale and ±inf saturate to ±448 × scale; NaN → 0x7F/0xFF",
  fp8_e4m3fnuz: "|x| > 240 × scale and ±inf saturate to ±240 × scale; NaN → 0x80; −0 → +0 (no negative zero)",
  fp8_e5m2: "|x| ≥ 61440 × scale → ±inf; ±inf and NaN are kept",
};

/** Rounding into `to` (at the largest of its scales): the bound every lossy conversion states. */
export const roundingBound = (to: KvDtype, maxScale = 1): ErrorBound => ({
  relative: 2 ** -PRECISION[to],
  absolute: HALF_SUBNORMAL[to] * maxScale,
  rule: RULES[to],
});

/** bf16 → f16 keeps every value in [2^-14, 65504] exactly; the rest follows a saturate/flush rule. */
export const BF16_TO_F16_BOUND: ErrorBound = {
  relative: 0,
  absolute: 2 ** -25,
  rule:
    "exact for 2^-14 ≤ |x| ≤ 65504; |x| > 65504 saturates to ±65504 (counted as saturated); 0 < |x| < 2^-14 " +
    "rounds to an f16 subnormal, flushing to ±0 at or under 2^-25 (counted as belowNormal); ±inf and NaN are kept",
};

/** e4m3fnuz → e4m3fn at half the scale: every code keeps its value except the two fn cannot hold. */
export const FNUZ_TO_FN_BOUND: ErrorBound = {
  relative: 1 / 15,
  absolute: 0,
  rule: "exact except codes 0x7F/0xFF (±480 × new scale), which saturate to 0x7E/0xFE (±448 × new scale); NaN 0x80 → 0x7F",
};
