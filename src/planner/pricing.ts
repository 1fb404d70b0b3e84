// Hourly price per chip chosen from the catalog's ranges (low, mid or high point, or a user override).
// Chips with only a purchase estimate (Gaudi 3) are priced at the H100's hourly-per-purchase-dollar ratio.
import type { Accelerator, AcceleratorCatalog } from "../hardware/accelerator-catalog.ts";

export type PricePoint = "low" | "mid" | "high";
export type Prices = Readonly<Record<string, number>>;

const REFERENCE = "nvidia-h100-sxm";

function point(a: Accelerator, p: PricePoint): number | null {
  const lo = a.usd_per_hour_low;
  const hi = a.usd_per_hour_high;
  if (lo === null || hi === null) return null;
  return p === "low" ? lo : p === "high" ? hi : (lo + hi) / 2;
}

/** $/chip-hour for every chip that can be priced; overrides win. Chips that cannot be priced are omitted. */
export function choosePrices(catalog: AcceleratorCatalog, p: PricePoint = "mid", overrides: Prices = {}): Record<string, number> {
  const out: Record<string, number> = {};
  const ref = catalog.accelerators.find((a) => a.id === REFERENCE);
  const refHour = ref ? point(ref, p) : null;
  for (const a of catalog.accelerators) {
    const hour = point(a, p);
    if (hour !== null) out[a.id] = hour;
    else if (a.purchase_usd_estimate !== null && ref?.purchase_usd_estimate && refHour !== null) {
      out[a.id] = (refHour * a.purchase_usd_estimate) / ref.purchase_usd_estimate;
    }
  }
  for (const [id, v] of Object.entries(overrides)) out[id] = v;
  return out;
}
