// Seeded fault injection for engine drivers. A schedule is asked once per engine call; with probability
// `ratePerClass[c]` it returns a fault of class c, drawn uniformly from the vendor's real codes of that class
// (the classifier tables), else undefined. The PRNG is mulberry32, so one seed reproduces the same sequence
// on Node and Deno; callers print the seed so any run can be replayed.
import { DriverFault, type FaultClass } from "../engine.ts";
import { FAULT_CLASSES } from "./policy.ts";
import type { FaultRule } from "./rules.ts";
import { faultVendorFor, isFaultVendor, VENDOR_TABLES } from "./vendors.ts";

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

/**
 * A schedule that injects exactly the listed faults: `{ call: n, faultClass }` faults the n-th engine call (1-based)
 * with the vendor's first code of that class. For tests that need one fault of one class at a known point.
 */
export const scriptedFaultSchedule = (
  vendor: string,
  script: ReadonlyArray<{ readonly call: number; readonly faultClass: FaultClass }>,
): FaultSchedule => {
  if (!isFaultVendor(vendor)) throw new FaultScheduleError(`fault script: no fault table for vendor "${vendor}"`);
  const rules = VENDOR_TABLES[vendor].rules;
  const byCall = new Map<number, FaultRule>();
  for (const { call, faultClass } of script) {
    const rule = rules.find((r) => r.faultClass === faultClass && r.scope !== "request");
    if (rule === undefined) throw new FaultScheduleError(`fault script: vendor "${vendor}" has no device-scoped ${faultClass} code`);
    if (!Number.isInteger(call) || call < 1) throw new FaultScheduleError(`fault script: call must be a positive integer, got ${call}`);
    byCall.set(call, rule);
  }
  let calls = 0;
  const next = (): DriverFault | undefined => {
    const rule = byCall.get(++calls);
    return rule && new DriverFault({ vendor, code: rule.code, message: rule.sample, faultClass: rule.faultClass });
  };
  return { seed: 0, vendor, next, calls: () => calls };
};

/**
 * Parses `TANDEM_FAULT_RATES` ("transient=0.01,fatal=0.001", seeded by `TANDEM_FAULT_SEED`) or `TANDEM_FAULT_SCRIPT`
 * ("transient@1,fatal@4") into a schedule for the engine's vendor; with both, scripted calls fault as scripted and
 * the rest as the rates say; undefined when neither is set. Throws FaultScheduleError on a malformed value.
 */
export const faultScheduleFromEnv = (engineVendor: string, env: Readonly<Record<string, string | undefined>>): FaultSchedule | undefined => {
  if (!env.TANDEM_FAULT_SCRIPT && !env.TANDEM_FAULT_RATES) return undefined;
  const vendor = faultVendorFor(engineVendor);
  if (vendor === undefined) throw new FaultScheduleError(`fault injection: no fault table for vendor "${engineVendor}"`);
  const isClass = (c: string): c is FaultClass => (FAULT_CLASSES as ReadonlyArray<string>).includes(c);
  const pairs = (value: string, separator: string, name: string) =>
    value.split(",").filter((p) => p.trim() !== "").map((part) => {
      const [faultClass, n] = part.trim().split(separator);
      if (faultClass === undefined || !isClass(faultClass) || n === undefined || !Number.isFinite(Number(n))) {
        throw new FaultScheduleError(`${name}: "${part}" is not <class>${separator}<number> (classes: ${FAULT_CLASSES.join(", ")})`);
      }
      return [faultClass, Number(n)] as const;
    });
  const scripted = env.TANDEM_FAULT_SCRIPT
    ? scriptedFaultSchedule(vendor, pairs(env.TANDEM_FAULT_SCRIPT, "@", "TANDEM_FAULT_SCRIPT").map(([faultClass, call]) => ({ call, faultClass })))
    : undefined;
  const random = env.TANDEM_FAULT_RATES
    ? makeFaultSchedule({ seed: Number(env.TANDEM_FAULT_SEED ?? "1"), vendor, ratePerClass: Object.fromEntries(pairs(env.TANDEM_FAULT_RATES, "=", "TANDEM_FAULT_RATES")) })
    : undefined;
  if (scripted === undefined || random === undefined) return scripted ?? random;
  // Both: the script's calls fault as scripted, every other call as the seeded rates say.
  return {
    seed: random.seed,
    vendor,
    next: () => {
      const planned = scripted.next();
      const drawn = random.next();
      return planned ?? drawn;
    },
    calls: random.calls,
  };
  return undefined;
};
