// Closed-form cost and interactivity of one serving configuration (disaggregated pools or one colocated pool),
// from the hardware performance model. Cost is $ per million TOTAL tokens (input + output) everywhere.
import type { Accelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import { decodeStepSeconds, memoryFit, prefillSeconds } from "../hardware/performance-model.ts";
import { decodeTimeLost, prefillUnderDecode } from "./interference.ts";
import { kvTransferSeconds, type KvLink } from "./kv-link.ts";
import { poissonMeanWithin, slotWaitPercentile } from "./queueing.ts";
import { maxUtilisation, percentileSojourn, type Slo } from "./slo.ts";
import type { Workload } from "./workloads.ts";

/** Fraction of decode batch slots holding a live sequence on average (admission gaps, stragglers). */
export const DECODE_OCCUPANCY = 0.9;

export interface PlanConfig {
  readonly kind: "disaggregated" | "colocated";
  /** "prefillChip:decodeChip" or "colocated:chip" — the identity the winner and ratios refer to. */
  readonly pair: string;
  readonly prefillChip: string;
  readonly decodeChip: string;
  readonly prefillTp: number;
  readonly decodeTp: number;
  readonly prefillBatch: number;
  readonly decodeBatch: number;
  /** Groups (of tp chips each) per pool; colocated: prefillGroups = 0. */
  readonly prefillGroups: number;
  readonly decodeGroups: number;
  /** Chip-hours of each chip id per million total tokens: cost = Σ hours · $/h (linear in prices). */
  readonly chipHoursPerMtok: Readonly<Record<string, number>>;
  readonly usdPerMtok: number;
  /** Output tokens per second seen by one user (1 / mean TPOT). */
  readonly interactivity: number;
  readonly ttftS: number;
  readonly tpotS: number;
  readonly prefillUtilisation: number;
}

export interface EvalContext {
  readonly model: ModelSpec;
  readonly workload: Workload;
  readonly slo: Slo;
  readonly link: KvLink;
  readonly dtype: Dtype;
  readonly prices: Readonly<Record<string, number>>;
}

export interface PrefillOption {
  readonly chip: Accelerator;
  readonly tp: number;
  readonly batch: number;
  readonly seconds: number;
}

export interface DecodeOption {
  readonly chip: Accelerator;
  readonly tp: number;
  readonly batch: number;
  readonly stepAvgS: number;
  readonly stepMaxS: number;
  /** Requests/s one group finishes. */
  readonly rate: number;
}

export function prefillOption(ctx: EvalContext, chip: Accelerator, tp: number, batch: number): PrefillOption | null {
  const { model, workload, dtype } = ctx;
  if (!memoryFit(chip, model, batch, workload.inputTokens, { tp, dtype }).fits) return null;
  return { chip, tp, batch, seconds: prefillSeconds(chip, model, workload.inputTokens, { tp, batch, dtype }) };
}

export function decodeOption(ctx: EvalContext, chip: Accelerator, tp: number, batch: number): DecodeOption | null {
  const { model, workload, slo, dtype } = ctx;
  const ctxMax = workload.inputTokens + workload.outputTokens;
  const ctxAvg = Math.round(workload.inputTokens + workload.outputTokens / 2);
  if (!memoryFit(chip, model, batch, ctxMax, { tp, dtype }).fits) return null;
  const stepMaxS = decodeStepSeconds(chip, model, batch, ctxMax, { tp, dtype });
  if (stepMaxS * 1000 > slo.tpotMs) return null;
  const stepAvgS = decodeStepSeconds(chip, model, batch, ctxAvg, { tp, dtype });
  return { chip, tp, batch, stepAvgS, stepMaxS, rate: (DECODE_OCCUPANCY * batch) / (workload.outputTokens * stepAvgS) };
}

/** Disaggregated: nP prefill groups and nD decode groups; null when the SLO cannot be met. */
export function evaluateDisaggregated(ctx: EvalContext, p: PrefillOption, d: DecodeOption, nP: number, nD: number): PlanConfig | null {
  const { model, workload, slo, link, dtype, prices } = ctx;
  const pPrice = prices[p.chip.id];
  const dPrice = prices[d.chip.id];
  if (pPrice === undefined || dPrice === undefined) return null;
  const kvS = kvTransferSeconds(link, model, workload.inputTokens, model.kv_bytes_per_token[dtype], p.chip.vendor !== d.chip.vendor);
  const budget = slo.ttftMs / 1000 - kvS - d.stepAvgS;
  const rho = maxUtilisation(p.seconds, budget, slo.percentile);
  if (rho <= 0) return null;
  const prefillRate = (nP * rho * p.batch) / p.seconds;
  const decodeRate = nD * d.rate;
  const rate = Math.min(prefillRate, decodeRate);
  const mtokPerHour = (rate * (workload.inputTokens + workload.outputTokens) * 3600) / 1e6;
  const hours: Record<string, number> = {};
  hours[p.chip.id] = (nP * p.tp) / mtokPerHour;
  hours[d.chip.id] = (hours[d.chip.id] ?? 0) + (nD * d.tp) / mtokPerHour;
  const usd = Object.entries(hours).reduce((s, [id, h]) => s + h * (prices[id] ?? 0), 0);
  return {
    kind: "disaggregated",
    pair: `${p.chip.id}:${d.chip.id}`,
    prefillChip: p.chip.id,
    decodeChip: d.chip.id,
    prefillTp: p.tp,
    decodeTp: d.tp,
    prefillBatch: p.batch,
    decodeBatch: d.batch,
    prefillGroups: nP,
    decodeGroups: nD,
    chipHoursPerMtok: hours,
    usdPerMtok: usd,
    interactivity: 1 / d.stepAvgS,
    ttftS: p.seconds + kvS + d.stepAvgS,
    tpotS: d.stepAvgS,
    prefillUtilisation: (rate / prefillRate) * rho,
  };
}

/**
 * Colocated continuous batching on one group of tp chips holding `batch` sequences (no chunked prefill, as
 * measured): each prompt's prefill s (slowed by BETA steps) costs the running decodes `lost` = decodeTimeLost(s)
 * (interference.ts), so at λ requests/s decode runs a fraction 1 − λ·lost of the time. λ is the largest rate meeting:
 *   TPOT  at the percentile: a request decoding for L = out·tpot sees N ~ Poisson(λL) prefills and needs
 *         d_max + N·lost/out ≤ tpot for N up to its p-quantile (the mean alone, λ ≤ (1 − d_max/tpot)/lost,
 *         let 25–35% of requests miss in the simulator)
 *   decode throughput B(1 − λ·lost)/d_avg ≥ λ·out/occupancy
 *   TTFT  the wait for one of the B slots (held from prefill start to the last token; M/M/c, queueing.ts) plus
 *         the prefill queue at ρ = λs meet the TTFT percentile (without the slot wait, small batches at 0.9
 *         occupancy queued for tens of seconds in the simulator).
 */
export function evaluateColocated(ctx: EvalContext, chip: Accelerator, tp: number, batch: number): PlanConfig | null {
  const { model, workload, slo, dtype, prices } = ctx;
  const price = prices[chip.id];
  if (price === undefined) return null;
  const ctxMax = workload.inputTokens + workload.outputTokens;
  const ctxAvg = Math.round(workload.inputTokens + workload.outputTokens / 2);
  if (!memoryFit(chip, model, batch, ctxMax, { tp, dtype }).fits) return null;
  const dMax = decodeStepSeconds(chip, model, batch, ctxMax, { tp, dtype });
  const dAvg = decodeStepSeconds(chip, model, batch, ctxAvg, { tp, dtype });
  if (dMax * 1000 > slo.tpotMs) return null;
  const s = prefillUnderDecode(prefillSeconds(chip, model, workload.inputTokens, { tp, dtype }), dAvg);
  const lost = decodeTimeLost(s, dAvg);
  const budget = slo.ttftMs / 1000 - dAvg;
  const rho = maxUtilisation(s, budget, slo.percentile);
  if (rho <= 0) return null;
  const lifetime = (workload.outputTokens * slo.tpotMs) / 1000;
  const lTpot = poissonMeanWithin(((slo.tpotMs / 1000 - dMax) * workload.outputTokens) / lost, slo.percentile) / lifetime;
  const lDecode = batch / ((dAvg * workload.outputTokens) / DECODE_OCCUPANCY + batch * lost);
  const ttftAt = (l: number) => {
    const hold = s + ((workload.outputTokens - 1) * dAvg) / (1 - l * lost);
    return slotWaitPercentile(batch, hold, l, slo.percentile) + percentileSojourn(s, l * s, slo.percentile);
  };
  let rate = Math.min(lTpot, lDecode, rho / s);
  if (ttftAt(rate) > budget) {
    let lo = 0;
    for (let i = 0; i < 40; i++) {
      const mid = (lo + rate) / 2;
      if (ttftAt(mid) <= budget) lo = mid;
      else rate = mid;
    }
    rate = lo;
  }
  if (!(rate > 0)) return null;
  const mtokPerHour = (rate * (workload.inputTokens + workload.outputTokens) * 3600) / 1e6;
  const hours = { [chip.id]: tp / mtokPerHour };
  const running = 1 - rate * lost;
  return {
    kind: "colocated",
    pair: `colocated:${chip.id}`,
    prefillChip: chip.id,
    decodeChip: chip.id,
    prefillTp: tp,
    decodeTp: tp,
    prefillBatch: 1,
    decodeBatch: batch,
    prefillGroups: 0,
    decodeGroups: 1,
    chipHoursPerMtok: hours,
    usdPerMtok: hours[chip.id]! * price,
    interactivity: running / dAvg,
    ttftS: s + dAvg,
    tpotS: dAvg / running,
    prefillUtilisation: rate * s,
  };
}
