// How a driver fault looks to a caller: resource exhaustion is `Overloaded` (retry elsewhere or later),
// everything else is `Unavailable` with the vendor code as the reason.
import { overloaded, type TandemError, unavailable } from "../protocol/index.ts";
import type { DriverFault } from "./engine.ts";

export const driverFaultToError = (fault: DriverFault): TandemError =>
  fault.faultClass === "resource"
    ? overloaded(`${fault.vendor}_${fault.code}`, fault.message)
    : unavailable(`${fault.vendor}_${fault.code}`, fault.message);
