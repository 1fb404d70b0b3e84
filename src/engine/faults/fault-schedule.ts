// Seeded fault injection for engine drivers. A schedule is asked once per engine call; with probability
// `ratePerClass[c]` it returns a fault of class c, drawn uniformly from the vendor's real codes of that class
// (the classifier tables), else undefined. The PRNG is mulberry32, so one seed reproduces the same sequence
// on Node and Deno; callers print the seed so any run can be replayed.
import { DriverFault, type FaultClass } from "../engine.ts";
import { FAULT_CLASSES } from "./policy.ts";
import type { FaultRule } from "./rules.ts";
import { isFaultVendor, VENDOR_TABLES } from "./vendors.ts";

/** mulberry32: a 32-bit state PRNG, uniform in [0, 1). Small, fast, and identical on every JS engine. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

export interface FaultScheduleOptions {
  readonly seed: number;
  readonly vendor: string;
  /** Probability per engine call of a fault of each class; the sum must not exceed 1. */
  readonly ratePerClass: Partial<Readonly<Record<FaultClass, number>>>;
}

export interface FaultSchedule {
  readonly seed: number;
  readonly vendor: string;
  /** Call once per engine call: the fault to inject, or undefined. */
  readonly next: () => DriverFault | undefined;
  /** Engine calls asked so far. */
  readonly calls: () => number;
}

export class FaultScheduleError extends Error {}

/**
 * Builds a deterministic schedule. Throws FaultScheduleError for an unknown vendor, a rate outside [0, 1],
 * rates summing above 1, or a positive rate for a class the vendor has no codes for.
 */
export const makeFaultSchedule = (options: FaultScheduleOptions): FaultSchedule => {
  const { vendor, ratePerClass } = options;
  if (!Number.isFinite(options.seed)) throw new FaultScheduleError(`fault schedule: seed must be a finite number, got ${options.seed}`);
  const seed = options.seed >>> 0;
  if (!isFaultVendor(vendor)) throw new FaultScheduleError(`fault schedule: no fault table for vendor "${vendor}"`);
  const table = VENDOR_TABLES[vendor];

  const bands: Array<{ readonly upTo: number; readonly rules: ReadonlyArray<FaultRule> }> = [];
  let total = 0;
  for (const faultClass of FAULT_CLASSES) {
    const rate = ratePerClass[faultClass] ?? 0;
    if (!Number.isFinite(rate) || rate < 0 || rate > 1) {
      throw new FaultScheduleError(`fault schedule: rate for ${faultClass} must be in [0, 1], got ${rate}`);
    }
    if (rate === 0) continue;
    const rules = table.rules.filter((r) => r.faultClass === faultClass);
    if (rules.length === 0) throw new FaultScheduleError(`fault schedule: vendor "${vendor}" has no ${faultClass} codes`);
    total += rate;
    bands.push({ upTo: total, rules });
  }
  if (total > 1 + 1e-12) throw new FaultScheduleError(`fault schedule: rates sum to ${total}, more than 1`);

  const random = mulberry32(seed);
  let calls = 0;
  const next = (): DriverFault | undefined => {
    calls++;
    const u = random();
    const band = bands.find((b) => u < b.upTo);
    if (band === undefined) return undefined;
    const rule = band.rules[Math.floor(random() * band.rules.length)] ?? band.rules[0]!;
    return new DriverFault({ vendor, code: rule.code, message: rule.sample, faultClass: rule.faultClass });
  };
  return { seed, vendor, next, calls: () => calls };
};
