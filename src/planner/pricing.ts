// Hourly price per chip: a point of the catalog's rental ranges (low, mid or high), or the total cost of
// owning it (tco: purchase price amortised over its life, plus its power), or a user override.
// With rental points, chips with only a purchase estimate (Gaudi 3) are priced at the H100's
// hourly-per-purchase-dollar ratio.
import type { Accelerator, AcceleratorCatalog } from "../hardware/accelerator-catalog.ts";

export type PricePoint = "low" | "mid" | "high" | "tco";
export type Prices = Readonly<Record<string, number>>;

/** What an owned chip costs per hour: purchase ÷ (years × 8,760 h) + TDP × PUE × electricity price. */
export interface TcoInputs {
  readonly years: number;
  readonly usdPerKwh: number;
  /** Power usage effectiveness: facility power ÷ IT power. */
  readonly pue: number;
  /** Purchase prices (USD) by chip id, over the catalog's `purchase_usd_estimate`. */
  readonly purchaseUsd: Prices;
}

/** 4-year straight-line amortisation, $0.10/kWh, PUE 1.3: common data-centre planning figures. */
export const DEFAULT_TCO: TcoInputs = { years: 4, usdPerKwh: 0.1, pue: 1.3, purchaseUsd: {} };

const REFERENCE = "nvidia-h100-sxm";
const HOURS_PER_YEAR = 8760;

function point(a: Accelerator, p: Exclude<PricePoint, "tco">): number | null {
  const lo = a.usd_per_hour_low;
  const hi = a.usd_per_hour_high;
  if (lo === null || hi === null) return null;
  return p === "low" ? lo : p === "high" ? hi : (lo + hi) / 2;
}

/** $/hour of owning `a`, or null without a purchase price or a TDP. */
export function tcoHourly(a: Accelerator, tco: TcoInputs): number | null {
  const purchase = tco.purchaseUsd[a.id] ?? a.purchase_usd_estimate;
  if (purchase === null || a.tdp_w === null) return null;
  return purchase / (tco.years * HOURS_PER_YEAR) + (a.tdp_w / 1000) * tco.pue * tco.usdPerKwh;
}

/** $/chip-hour for every chip that can be priced; overrides win. Chips that cannot be priced are omitted. */
export function choosePrices(catalog: AcceleratorCatalog, p: PricePoint = "mid", overrides: Prices = {}, tco: TcoInputs = DEFAULT_TCO): Record<string, number> {
  const out: Record<string, number> = {};
  if (p === "tco") {
    for (const a of catalog.accelerators) {
      const hour = tcoHourly(a, tco);
      if (hour !== null) out[a.id] = hour;
    }
  } else {
    const ref = catalog.accelerators.find((a) => a.id === REFERENCE);
    const refHour = ref ? point(ref, p) : null;
    for (const a of catalog.accelerators) {
      const hour = point(a, p);
      if (hour !== null) out[a.id] = hour;
      else if (a.purchase_usd_estimate !== null && ref?.purchase_usd_estimate && refHour !== null) {
        out[a.id] = (refHour * a.purchase_usd_estimate) / ref.purchase_usd_estimate;
      }
    }
  }
  for (const [id, v] of Object.entries(overrides)) out[id] = v;
  return out;
}
