// Step times and KV memory of one worker group, from the hardware performance model (the planner's model),
// memoised because a run asks for the same few shapes millions of times. A decode step over sequences with
// different contexts costs what a batch at their mean context costs (KV bytes and attention FLOPs are both
// linear in the summed context); the mean context is rounded to CONTEXT_RESOLUTION tokens for the memo.
import type { Accelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import { decodeStepSeconds, memoryFit, prefillSeconds } from "../hardware/performance-model.ts";

export const CONTEXT_RESOLUTION = 16;

export interface StepTimes {
  /** Seconds to prefill `batch` prompts of `tokens` tokens in one forward. */
  prefill(tokens: number, batch: number): number;
  /** Seconds of one decode step over `batch` sequences holding `sumContext` KV tokens in total. */
  decode(batch: number, sumContext: number): number;
  /** KV tokens one group can hold next to the weights (usable HBM − weights) ÷ KV bytes per token. */
  readonly kvTokenBudget: number;
}

export function stepTimes(chip: Accelerator, model: ModelSpec, tp: number, dtype: Dtype): StepTimes {
  const opts = { tp, dtype };
  const kvTokenBudget = memoryFit(chip, model, 1, 1, opts).maxBatch;
  const prefillMemo = new Map<number, number>();
  const decodeMemo = new Map<number, number>();
  return {
    kvTokenBudget,
    prefill(tokens, batch) {
      const key = tokens * 4096 + batch;
      let s = prefillMemo.get(key);
      if (s === undefined) {
        s = prefillSeconds(chip, model, tokens, { ...opts, batch });
        prefillMemo.set(key, s);
      }
      return s;
    },
    decode(batch, sumContext) {
      const bucket = Math.round(sumContext / batch / CONTEXT_RESOLUTION);
      const key = bucket * 8192 + batch;
      let s = decodeMemo.get(key);
      if (s === undefined) {
        s = decodeStepSeconds(chip, model, batch, bucket * CONTEXT_RESOLUTION, opts);
        decodeMemo.set(key, s);
      }
      return s;
    },
  };
}
