// Break-even prices: cost is linear in each chip's $/h for a fixed configuration, so the price at which the
// winning chip pair changes is where the winner's line crosses the cheapest line of another pair.
import type { PlanConfig } from "./evaluate.ts";

export interface BreakEven {
  readonly chip: string;
  readonly currentUsdPerHour: number;
  /** The price at which `newWinner` ties the current winner (the winner changes just past it). */
  readonly breakEvenUsdPerHour: number;
  readonly direction: "above" | "below";
  readonly newWinner: string;
}

const costAt = (c: PlanConfig, prices: Readonly<Record<string, number>>, chip: string, x: number) =>
  Object.entries(c.chipHoursPerMtok).reduce((s, [id, h]) => s + h * (id === chip ? x : (prices[id] ?? 0)), 0);

/** For every priced chip: the nearest price (up for the winner's chips, down for the others) that flips the winner. */
export function breakEvenPrices(best: readonly PlanConfig[], prices: Readonly<Record<string, number>>): BreakEven[] {
  const winner = best.reduce((a, b) => (b.usdPerMtok < a.usdPerMtok ? b : a));
  const out: BreakEven[] = [];
  for (const chip of Object.keys(prices)) {
    const x0 = prices[chip]!;
    const kw = winner.chipHoursPerMtok[chip] ?? 0;
    const cw = costAt(winner, prices, chip, x0);
    let bestX: number | null = null;
    let who = "";
    for (const c of best) {
      if (c.pair === winner.pair) continue;
      const kc = c.chipHoursPerMtok[chip] ?? 0;
      if (kc === kw) continue;
      const x = x0 + (costAt(c, prices, chip, x0) - cw) / (kw - kc);
      if (x < 0) continue;
      const up = kw > kc;
      if ((up && x > x0) || (!up && x < x0)) {
        if (bestX === null || Math.abs(x - x0) < Math.abs(bestX - x0)) {
          bestX = x;
          who = c.pair;
        }
      }
    }
    if (bestX !== null) out.push({ chip, currentUsdPerHour: x0, breakEvenUsdPerHour: bestX, direction: bestX > x0 ? "above" : "below", newWinner: who });
  }
  return out;
}
