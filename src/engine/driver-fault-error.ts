// How a driver fault looks to a caller: resource exhaustion is `Overloaded` (retry elsewhere or later); a fault
// that took the device down (reset, or fatal and quarantined) is `Unavailable` with reason `device_reset` /
// `device_fatal` (the request actor counts those toward poison); anything else is `Unavailable` with the vendor
// code as the reason.
import { overloaded, type TandemError, unavailable } from "../protocol/index.ts";
import type { DriverFault } from "./engine.ts";
import { faultScope } from "./faults/vendors.ts";

export const driverFaultToError = (fault: DriverFault): TandemError => {
  const detail = `${fault.vendor} ${fault.code}: ${fault.message}`;
  if (fault.faultClass === "resource") return overloaded(`${fault.vendor}_${fault.code}`, fault.message);
  if (fault.faultClass === "device-reset") return unavailable("device_reset", detail);
  if (fault.faultClass === "fatal" && faultScope(fault) === "device") return unavailable("device_fatal", detail);
  return unavailable(`${fault.vendor}_${fault.code}`, fault.message);
};
