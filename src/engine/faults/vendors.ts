// The vendor registry: each vendor's rule table and classifier, and look-ups from a fault back to its row.
import { DriverFault } from "../engine.ts";
import { AMD_TABLE, AMD_VENDOR, classifyAmd } from "./amd.ts";
import { classifyCpu, CPU_TABLE, CPU_VENDOR } from "./cpu-llama.ts";
import { classifyGaudi, GAUDI_TABLE, GAUDI_VENDOR } from "./intel-gaudi.ts";
import { classifyNvidia, NVIDIA_TABLE, NVIDIA_VENDOR } from "./nvidia.ts";
import { type FaultInput, type FaultRule, type FaultScope, ruleFor, UNKNOWN_CODE, type VendorTable } from "./rules.ts";

export type FaultVendor = typeof NVIDIA_VENDOR | typeof AMD_VENDOR | typeof GAUDI_VENDOR | typeof CPU_VENDOR;

export const FAULT_VENDORS: ReadonlyArray<FaultVendor> = [NVIDIA_VENDOR, AMD_VENDOR, GAUDI_VENDOR, CPU_VENDOR];

export const VENDOR_TABLES: Readonly<Record<FaultVendor, VendorTable>> = {
  nvidia: NVIDIA_TABLE,
  amd: AMD_TABLE,
  "intel-gaudi": GAUDI_TABLE,
  cpu: CPU_TABLE,
};

export const CLASSIFIERS: Readonly<Record<FaultVendor, (input: FaultInput) => DriverFault>> = {
  nvidia: classifyNvidia,
  amd: classifyAmd,
  "intel-gaudi": classifyGaudi,
  cpu: classifyCpu,
};

export const isFaultVendor = (vendor: string): vendor is FaultVendor => Object.hasOwn(VENDOR_TABLES, vendor);

/** Classifies with the vendor's table; a vendor without one yields `transient` / `unknown` with the raw text. */
export const classifyFault = (vendor: string, input: FaultInput): DriverFault => {
  if (isFaultVendor(vendor)) return CLASSIFIERS[vendor](input);
  const message = typeof input === "number" || typeof input === "string" ? String(input) : (input.message ?? "");
  return new DriverFault({ vendor, code: UNKNOWN_CODE, message, faultClass: "transient" });
};

/** The table row behind a fault, when its vendor and code are known. */
export const faultRule = (fault: Pick<DriverFault, "vendor" | "code">): FaultRule | undefined =>
  isFaultVendor(fault.vendor) ? ruleFor(VENDOR_TABLES[fault.vendor], fault.code) : undefined;

/** Request-scoped faults condemn one request's payload, not the device (see cpu-llama.ts). */
export const faultScope = (fault: Pick<DriverFault, "vendor" | "code">): FaultScope => faultRule(fault)?.scope ?? "device";

/** The fault table for an engine's vendor as the catalog names it ("NVIDIA", "AMD", "Intel", "cpu"); undefined without one. */
export const faultVendorFor = (engineVendor: string): FaultVendor | undefined => {
  const name = engineVendor.toLowerCase();
  if (name === "intel") return GAUDI_VENDOR;
  return isFaultVendor(name) ? name : undefined;
};
