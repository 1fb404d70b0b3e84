// The flags `tandem plan` and `tandem simulate` share — model, workload, SLO, prices, KV link, dtype, catalog —
// declared once and parsed once, so both commands read the same inputs the same way.
import { DEFAULT_KV_LINK, type KvLink } from "../planner/kv-link.ts";
import type { PricePoint } from "../planner/pricing.ts";
import { DEFAULT_SLO, DEFAULT_SLOS, type Slo } from "../planner/slo.ts";
import { customWorkload, findWorkload, type Workload } from "../planner/workloads.ts";
import { UsageError } from "./usage.ts";

export const PLANNING_OPTIONS = {
  help: { type: "boolean", short: "h" },
  json: { type: "boolean" },
  model: { type: "string" },
  workload: { type: "string" },
  input: { type: "string" },
  output: { type: "string" },
  "ttft-ms": { type: "string" },
  "tpot-ms": { type: "string" },
  prices: { type: "string" },
  price: { type: "string", multiple: true },
  bf16: { type: "boolean" },
  "kv-gbps": { type: "string" },
  "kv-fixed-ms": { type: "string" },
  "kv-translate-us": { type: "string" },
  catalog: { type: "string" },
  svg: { type: "string" },
} as const;

export interface PlanningValues {
  readonly workload?: string | undefined;
  readonly input?: string | undefined;
  readonly output?: string | undefined;
  readonly "ttft-ms"?: string | undefined;
  readonly "tpot-ms"?: string | undefined;
  readonly prices?: string | undefined;
  readonly price?: ReadonlyArray<string> | undefined;
  readonly bf16?: boolean | undefined;
  readonly "kv-gbps"?: string | undefined;
  readonly "kv-fixed-ms"?: string | undefined;
  readonly "kv-translate-us"?: string | undefined;
}

/** `--name raw` as a positive (or, with `positive` false, non-negative) number; undefined when not given. */
export const num = (name: string, raw: string | undefined, positive = true): number | undefined => {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || (positive ? n <= 0 : n < 0)) throw new UsageError(`--${name} must be a ${positive ? "positive" : "non-negative"} number, got "${raw}"`);
  return n;
};

/** `--workload <preset>` or `--input N --output N`; `fallback` when neither is given (else a usage error). */
export const parseWorkload = (values: PlanningValues, fallback?: string): Workload => {
  if (values.workload !== undefined) return findWorkload(values.workload);
  if (values.input !== undefined && values.output !== undefined) return customWorkload(Number(values.input), Number(values.output));
  if (fallback !== undefined) return findWorkload(fallback);
  throw new UsageError("give --workload <preset> or both --input N and --output N");
};

/** The workload preset's SLO with `--ttft-ms` / `--tpot-ms` (and the percentile, when given) applied. */
export const parseSlo = (values: PlanningValues, workload: Workload, percentile?: number): Slo => {
  const base = DEFAULT_SLOS[workload.id] ?? DEFAULT_SLO;
  return {
    ttftMs: num("ttft-ms", values["ttft-ms"]) ?? base.ttftMs,
    tpotMs: num("tpot-ms", values["tpot-ms"]) ?? base.tpotMs,
    percentile: percentile ?? base.percentile,
  };
};

/** `--prices low|mid|high` and each `--price chip=USD_PER_HOUR`, the chip named as `resolveChip` accepts it. */
export const parsePrices = (values: PlanningValues, resolveChip: (id: string) => string) => {
  const pricePoint = (values.prices ?? "mid") as PricePoint;
  if (!["low", "mid", "high"].includes(pricePoint)) throw new UsageError(`--prices must be low, mid or high, got "${values.prices}"`);
  const priceOverrides: Record<string, number> = {};
  for (const p of values.price ?? []) {
    const [id, v] = p.split("=");
    const n = Number(v);
    if (!id || !(n > 0)) throw new UsageError(`--price expects chip=USD_PER_HOUR, got "${p}"`);
    priceOverrides[resolveChip(id)] = n;
  }
  return { pricePoint, priceOverrides };
};

export const parseKvLink = (values: PlanningValues): KvLink => ({
  gbps: num("kv-gbps", values["kv-gbps"]) ?? DEFAULT_KV_LINK.gbps,
  fixedMs: num("kv-fixed-ms", values["kv-fixed-ms"], false) ?? DEFAULT_KV_LINK.fixedMs,
  translateUsPerLayer: num("kv-translate-us", values["kv-translate-us"], false) ?? DEFAULT_KV_LINK.translateUsPerLayer,
});

export const dtypeOf = (values: PlanningValues) => (values.bf16 ? "bf16" : "fp8") as "bf16" | "fp8";
