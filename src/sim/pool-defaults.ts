// Default batch sizes and tensor parallelism for a pool when the user does not give them, from the
// performance model: decode/colocated batches as large as memory and the TPOT SLO allow at the longest
// context; prefill batches that fill a token budget; the TP that gives the most throughput per chip.
import type { Accelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import { decodeStepSeconds, memoryFit, prefillSeconds } from "../hardware/performance-model.ts";
import { TP_CHOICES } from "../planner/search.ts";
import type { Slo } from "../planner/slo.ts";
import type { Workload } from "../planner/workloads.ts";

export interface PoolContext {
  readonly model: ModelSpec;
  readonly dtype: Dtype;
  readonly workload: Workload;
  readonly slo: Slo;
}

/** Prompt tokens one batched prefill forward aims for (past ~2K tokens per forward matmuls are saturated). */
export const PREFILL_TOKEN_BUDGET = 8192;

/** Largest power-of-two decode batch (≤ 1024) that fits at the longest context and meets TPOT there; 0 if none. */
export function defaultDecodeBatch(chip: Accelerator, ctx: PoolContext, tp: number): number {
  const longest = ctx.workload.inputTokens + ctx.workload.outputTokens;
  let best = 0;
  for (let b = 1; b <= 1024; b *= 2) {
    if (!memoryFit(chip, ctx.model, b, longest, { tp, dtype: ctx.dtype }).fits) break;
    if (decodeStepSeconds(chip, ctx.model, b, longest, { tp, dtype: ctx.dtype }) * 1000 > ctx.slo.tpotMs) break;
    best = b;
  }
  return best;
}

/** Prompts per prefill forward: as many as fill PREFILL_TOKEN_BUDGET tokens (1–8) and fit in memory; 0 if none. */
export function defaultPrefillBatch(chip: Accelerator, ctx: PoolContext, tp: number): number {
  let b = Math.max(1, Math.min(8, Math.floor(PREFILL_TOKEN_BUDGET / ctx.workload.inputTokens)));
  while (b > 0 && !memoryFit(chip, ctx.model, b, ctx.workload.inputTokens, { tp, dtype: ctx.dtype }).fits) b--;
  return b;
}

/** The TP (of TP_CHOICES) with the most requests/s per chip for the role; null when none fits. */
export function defaultTp(chip: Accelerator, ctx: PoolContext, role: "prefill" | "decode"): number | null {
  const { inputTokens: input, outputTokens: output } = ctx.workload;
  let best: { tp: number; perChip: number } | null = null;
  for (const tp of TP_CHOICES) {
    let perChip: number;
    if (role === "prefill") {
      const b = defaultPrefillBatch(chip, ctx, tp);
      if (b === 0) continue;
      perChip = b / prefillSeconds(chip, ctx.model, input, { tp, batch: b, dtype: ctx.dtype }) / tp;
    } else {
      const b = defaultDecodeBatch(chip, ctx, tp);
      if (b === 0) continue;
      perChip = b / (output * decodeStepSeconds(chip, ctx.model, b, input + output / 2, { tp, dtype: ctx.dtype })) / tp;
    }
    if (!best || perChip > best.perChip * 1.0001) best = { tp, perChip };
  }
  return best?.tp ?? null;
}
