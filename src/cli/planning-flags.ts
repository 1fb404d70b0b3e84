// The flags `tandem plan` and `tandem simulate` share — model, workload, SLO, prices, KV link, dtype, catalog —
// declared once and parsed once, so both commands read the same inputs the same way.
import { DEFAULT_KV_LINK, type KvLink } from "../planner/kv-link.ts";
import { DEFAULT_TCO, type PricePoint, type TcoInputs } from "../planner/pricing.ts";
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
  purchase: { type: "string", multiple: true },
  "tco-years": { type: "string" },
  "usd-per-kwh": { type: "string" },
  pue: { type: "string" },
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
  readonly purchase?: ReadonlyArray<string> | undefined;
  readonly "tco-years"?: string | undefined;
  readonly "usd-per-kwh"?: string | undefined;
  readonly pue?: string | undefined;
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

/** Each `--<flag> chip=USD` as a map by chip id, the chip named as `resolveChip` accepts it. */
const chipAmounts = (flag: string, unit: string, raw: ReadonlyArray<string> | undefined, resolveChip: (id: string) => string) => {
  const out: Record<string, number> = {};
  for (const p of raw ?? []) {
    const [id, v] = p.split("=");
    const n = Number(v);
    if (!id || !(n > 0)) throw new UsageError(`--${flag} expects chip=${unit}, got "${p}"`);
    out[resolveChip(id)] = n;
  }
  return out;
};

/**
 * `--prices low|mid|high|tco`, each `--price chip=USD_PER_HOUR`, and for tco each `--purchase chip=USD`,
 * `--tco-years`, `--usd-per-kwh` and `--pue`.
 */
export const parsePrices = (values: PlanningValues, resolveChip: (id: string) => string): { pricePoint: PricePoint; priceOverrides: Record<string, number>; tco: TcoInputs } => {
  const pricePoint = (values.prices ?? "mid") as PricePoint;
  if (!["low", "mid", "high", "tco"].includes(pricePoint)) throw new UsageError(`--prices must be low, mid, high or tco, got "${values.prices}"`);
  const tcoFlags = [values.purchase?.length ? "--purchase" : "", values["tco-years"] ? "--tco-years" : "", values["usd-per-kwh"] ? "--usd-per-kwh" : "", values.pue ? "--pue" : ""].filter(Boolean);
  if (pricePoint !== "tco" && tcoFlags.length > 0) throw new UsageError(`${tcoFlags.join(", ")}: these set ownership costs and need --prices tco`);
  const pue = num("pue", values.pue) ?? DEFAULT_TCO.pue;
  if (pue < 1) throw new UsageError(`--pue must be at least 1, got "${values.pue}"`);
  return {
    pricePoint,
    priceOverrides: chipAmounts("price", "USD_PER_HOUR", values.price, resolveChip),
    tco: {
      years: num("tco-years", values["tco-years"]) ?? DEFAULT_TCO.years,
      usdPerKwh: num("usd-per-kwh", values["usd-per-kwh"], false) ?? DEFAULT_TCO.usdPerKwh,
      pue,
      purchaseUsd: chipAmounts("purchase", "USD", values.purchase, resolveChip),
    },
  };
};

export const parseKvLink = (values: PlanningValues): KvLink => ({
  gbps: num("kv-gbps", values["kv-gbps"]) ?? DEFAULT_KV_LINK.gbps,
  fixedMs: num("kv-fixed-ms", values["kv-fixed-ms"], false) ?? DEFAULT_KV_LINK.fixedMs,
  translateUsPerLayer: num("kv-translate-us", values["kv-translate-us"], false) ?? DEFAULT_KV_LINK.translateUsPerLayer,
});

export const dtypeOf = (values: PlanningValues) => (values.bf16 ? "bf16" : "fp8") as "bf16" | "fp8";
