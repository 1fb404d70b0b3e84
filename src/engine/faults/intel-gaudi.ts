// Intel Gaudi fault classifier: SynapseAI runtime status codes (synStatus), habanalabs kernel-driver
// events (device reset, critical errors, unusable device) and HCCL collective failures.
// Wording of driver messages comes from the habanalabs driver (drivers/accel/habanalabs) and its uAPI
// (include/uapi/drm/habanalabs_accel.h); synStatus numbers from synapse_common_types.h. HCCL watchdog
// wording is inferred from PyTorch's ProcessGroupNCCL, which the Gaudi ProcessGroupHCCL mirrors: marked
// uncertain below.
import type { DriverFault } from "../engine.ts";
import { classifyWith, type FaultInput, type FaultRule, type VendorTable } from "./rules.ts";

export const GAUDI_VENDOR = "intel-gaudi";

const SYN_TYPES = "SynapseAI synStatus, synapse_common_types.h (github.com/HabanaAI)";
const HL_DRIVER = "Linux habanalabs driver, common/device.c (drivers/accel/habanalabs)";
const HL_UAPI = "Linux habanalabs uAPI, habanalabs_accel.h HL_NOTIFIER_EVENT_* (include/uapi/drm)";
const HCCL = "HCCL hcclResult_t (hccl.h, github.com/HabanaAI) and Gaudi PyTorch ProcessGroupHCCL";

export const GAUDI_RULES: ReadonlyArray<FaultRule> = [
  {
    code: "HCCL_TIMEOUT",
    aliases: ["hccl-timeout"],
    patterns: [/Watchdog caught collective operation timeout/i, /HCCL.*time(d)? ?out/i],
    meaning: "An HCCL collective (Gaudi scale-out over RoCE) did not complete within the process-group timeout.",
    faultClass: "interconnect",
    scope: "device",
    source: HCCL,
    sample: "[Rank 2] Watchdog caught collective operation timeout: WorkHCCL(SeqNum=17, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1800432 milliseconds before timing out.",
    uncertain: "Message wording assumed to follow ProcessGroupNCCL; the Gaudi bridge's exact text was not found in a primary source.",
  },
  {
    code: "hcclSocketError",
    aliases: ["hcclLibfabricError", "hcclSystemError"],
    patterns: [/hccl(Socket|Libfabric|System)Error/],
    meaning: "HCCL transport failure: socket (host NIC), libfabric (scale-out) or system call error.",
    faultClass: "interconnect",
    scope: "device",
    source: HCCL,
    sample: "HCCL error: hcclSocketError: connection to peer rank 5 was reset",
  },
  {
    code: "synFailHccl",
    numbers: [40],
    patterns: [/synFailHccl/],
    meaning: "synFailHccl (40): a Synapse call failed inside HCCL communication.",
    faultClass: "interconnect",
    scope: "device",
    source: SYN_TYPES,
    sample: "synapse call failed with status synFailHccl",
  },
  {
    code: "hl_device_unusable",
    aliases: ["HL_NOTIFIER_EVENT_DEVICE_UNAVAILABLE"],
    patterns: [/Device is NOT usable/i, /HL_NOTIFIER_EVENT_DEVICE_UNAVAILABLE/],
    meaning: "The driver failed to reset the device and marked it unusable; only a node reboot or service recovers it.",
    faultClass: "fatal",
    scope: "device",
    source: HL_DRIVER,
    sample: "habanalabs 0000:19:00.0: Failed to reset! Device is NOT usable",
  },
  {
    code: "hl_critical_error",
    aliases: ["HL_NOTIFIER_EVENT_CRITICAL_HW_ERR", "HL_NOTIFIER_EVENT_CRITICAL_FW_ERR"],
    patterns: [/HL_NOTIFIER_EVENT_CRITICAL_(HW|FW)_ERR/, /\bcritical (hw |fw |hardware |firmware )?error\b/i],
    meaning: "Device critical error (hardware or firmware) reported by the driver; the uAPI says it requires a SW abort and a HW reset.",
    faultClass: "fatal",
    scope: "device",
    source: HL_UAPI,
    sample: "habanalabs 0000:19:00.0: Critical error interrupt (event 1023), HL_NOTIFIER_EVENT_CRITICAL_HW_ERR, going to hard reset",
    uncertain: "Classified fatal as the issue asks (quarantine, alert). The uAPI describes these as needing an abort and HW reset, which may recover the device; a device that comes back could be un-quarantined by an operator.",
  },
  {
    code: "synDeviceReset",
    numbers: [17],
    aliases: ["HL_NOTIFIER_EVENT_DEVICE_RESET", "hl_device_reset"],
    patterns: [/synDeviceReset/, /Going to (hard )?reset device/i, /HL_NOTIFIER_EVENT_DEVICE_RESET/, /device reset detected/i],
    meaning: "synDeviceReset (17): the habanalabs driver reset the device; every context and its device memory are gone.",
    faultClass: "device-reset",
    scope: "device",
    source: `${SYN_TYPES}; ${HL_DRIVER}`,
    sample: "habanalabs 0000:19:00.0: Going to reset device",
  },
  {
    code: "hl_cs_timeout",
    aliases: ["tdr"],
    patterns: [/Command submission \d+ has not finished in \d+ seconds/i],
    meaning: "A command submission timed out (TDR); with reset-on-lockup (the default) the driver resets the device.",
    faultClass: "device-reset",
    scope: "device",
    source: HL_DRIVER,
    sample: "habanalabs 0000:19:00.0: Command submission 4711 has not finished in 30 seconds!",
    uncertain: "Only a reset if the driver's reset_on_lockup is enabled (default on); otherwise it would be transient.",
  },
  {
    code: "synFailedToAllocateDeviceMemory",
    numbers: [14],
    patterns: [/synFailedToAllocateDeviceMemory/],
    meaning: "synFailedToAllocateDeviceMemory (14): a device memory allocation failed.",
    faultClass: "resource",
    scope: "device",
    source: SYN_TYPES,
    sample: "synDeviceMalloc failed with status synFailedToAllocateDeviceMemory",
  },
  {
    code: "synOutOfDeviceMemory",
    numbers: [4],
    patterns: [/synOutOfDeviceMemory/, /out of device memory/i, /PT_DEVMEM.*Allocation failed/i, /\bout of memory\b/i],
    meaning: "synOutOfDeviceMemory (4): not enough HBM (device memory) for the request.",
    faultClass: "resource",
    scope: "device",
    source: SYN_TYPES,
    sample: "RuntimeError: [Rank:0] FATAL ERROR :: MODULE:PT_DEVMEM Allocation failed for size::2147483648 (2048)MB",
    uncertain: "The PT_DEVMEM wording is the Gaudi PyTorch bridge's, taken from user reports rather than Intel documentation.",
  },
  {
    code: "synOutOfResources",
    numbers: [27, 23, 3],
    aliases: ["synAllResourcesTaken", "synOutOfHostMemory"],
    patterns: [/synOutOfResources|synAllResourcesTaken|synOutOfHostMemory/],
    meaning: "synOutOfResources (27) / synAllResourcesTaken (23) / synOutOfHostMemory (3): a runtime resource (streams, host memory) is exhausted.",
    faultClass: "resource",
    scope: "device",
    source: SYN_TYPES,
    sample: "synLaunch failed with status synOutOfResources",
  },
  {
    code: "synTimeout",
    numbers: [42, 22],
    aliases: ["synBusy"],
    patterns: [/synTimeout|synBusy/],
    meaning: "synTimeout (42) / synBusy (22): a wait timed out or the runtime is busy; the device is fine.",
    faultClass: "transient",
    scope: "device",
    source: SYN_TYPES,
    sample: "synStreamSynchronize returned synTimeout",
  },
  {
    code: "synNoDeviceFound",
    numbers: [8],
    patterns: [/synNoDeviceFound/],
    meaning: "synNoDeviceFound (8): no Gaudi device is visible.",
    faultClass: "fatal",
    scope: "device",
    source: SYN_TYPES,
    sample: "synDeviceAcquire failed: synNoDeviceFound",
  },
];

export const GAUDI_TABLE: VendorTable = { vendor: GAUDI_VENDOR, rules: GAUDI_RULES };

/** A number is a synStatus value; a string is a code name (`synDeviceReset`) or a log line. */
export const classifyGaudi = (input: FaultInput): DriverFault => classifyWith(GAUDI_TABLE, input);
