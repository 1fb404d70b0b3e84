// Prefill/decode interference on one chip (the colocated baseline), fitted to the H200 measurement
// `../shared/data/calibration/h200-interference-8b.json`: a decode step overlapping a prefill waits for about half of it.
//   decode step during a prefill of P tokens = step_alone + ALPHA · prefill_alone(P)   (fits 0.47, 0.49, 0.54 at 4K, 8K, 2K)
//   prefill under decode load            = prefill_alone(P) + BETA · step_alone          (+10.9/+12.3/+13.7 ms ≈ 1.3 steps)
// So while a prefill of duration s runs, decode completes s / (step + ALPHA·s) ≈ 2 steps instead of s / step:
// the decode time lost per prefill is s − step · s / (step + ALPHA·s) (decodeTimeLost).
export const ALPHA_DECODE_STALL = 0.5;
export const BETA_PREFILL_SLOWDOWN = 1.3;

export interface InterferenceCase {
  readonly decode_step_ms_alone: number;
  readonly prefill_ms_alone: number;
  readonly prefill_ms_with_decode: number;
  readonly decode_step_ms_during_prefill: number;
}

export const decodeStepDuringPrefill = (stepAloneS: number, prefillAloneS: number, alpha = ALPHA_DECODE_STALL) => stepAloneS + alpha * prefillAloneS;
export const prefillUnderDecode = (prefillAloneS: number, stepAloneS: number, beta = BETA_PREFILL_SLOWDOWN) => prefillAloneS + beta * stepAloneS;

/** Decode time lost per prefill of duration s (colocated, no chunked prefill). */
export function decodeTimeLost(prefillS: number, stepAloneS: number, alpha = ALPHA_DECODE_STALL): number {
  return prefillS - (stepAloneS * prefillS) / decodeStepDuringPrefill(stepAloneS, prefillS, alpha);
}
