// NVIDIA fault classifier: CUDA runtime errors (cudaError_t), kernel-log Xid events and NCCL collective
// failures. Xid rules come first so a kernel log line is classified by its Xid number, not by words in the
// free text after it. Xids are observed out of band (kernel log, DCGM); when the serving process itself was
// hit it also sees a CUDA error, which classifies separately (e.g. Xid 94 is `transient` for the device,
// the cudaErrorECCUncorrectable the hit process gets is `device-reset` for that process).
import type { DriverFault } from "../engine.ts";
import { classifyWith, type FaultInput, type FaultRule, type VendorTable } from "./rules.ts";

export const NVIDIA_VENDOR = "nvidia";

const CUDA_TYPES = "CUDA Runtime API, cudaError_t (docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__TYPES.html)";
const XID_DOC = "NVIDIA Xid errors (docs.nvidia.com/deploy/xid-errors/)";
const NCCL_TYPES = "NCCL ncclResult_t (docs.nvidia.com/deeplearning/nccl/user-guide/docs/api/types.html)";
const PG_NCCL = "PyTorch ProcessGroupNCCL.cpp watchdog (github.com/pytorch/pytorch)";

/** Matches `NVRM: Xid (PCI:0000:3b:00): 79, …` and the short forms `Xid 79`, `Xid:79`. */
const xidPattern = (n: number): RegExp => new RegExp(String.raw`\bXid\b\s*(?:\([^)]*\))?\s*:?\s*${n}\b`, "i");

const xid = (
  n: number,
  rest: Omit<FaultRule, "code" | "aliases" | "patterns" | "scope" | "source"> & { readonly extra?: ReadonlyArray<RegExp>; readonly source?: string },
): FaultRule => {
  const { extra, source, ...row } = rest;
  return {
    code: `Xid${n}`,
    aliases: [`Xid ${n}`, `Xid:${n}`, `xid-${n}`],
    patterns: [xidPattern(n), ...(extra ?? [])],
    scope: "device",
    source: source ?? XID_DOC,
    ...row,
  };
};

export const NVIDIA_RULES: ReadonlyArray<FaultRule> = [
  xid(13, {
    meaning: "Graphics Engine Exception: usually an out-of-range access or illegal instruction in the application's kernel; NVIDIA's action is to restart the application.",
    faultClass: "transient",
    sample: "NVRM: Xid (PCI:0000:3b:00): 13, pid=4242, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address",
    extra: [/Graphics (SM )?(Warp )?Exception|Graphics Engine Exception/i],
  }),
  xid(31, {
    meaning: "GPU memory page fault (MMU fault): the application touched an unmapped address; the device is healthy, restart the application.",
    faultClass: "transient",
    sample: "NVRM: Xid (PCI:0000:3b:00): 31, pid=4242, name=python3, Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f12_34560000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
    extra: [/\bMMU Fault\b/i],
  }),
  xid(43, {
    meaning: "GPU stopped processing: the driver reset the faulting application's channel; the GPU stays usable.",
    faultClass: "transient",
    sample: "NVRM: Xid (PCI:0000:3b:00): 43, pid=4242, name=python3, Ch 00000010",
  }),
  xid(48, {
    meaning: "Double-bit (uncorrectable) ECC error in device memory; contexts on the GPU are lost and the GPU needs a reset.",
    faultClass: "device-reset",
    sample: "NVRM: Xid (PCI:0000:3b:00): 48, pid=4242, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
    extra: [/double bit error|\bDBE\b/i],
  }),
  xid(63, {
    meaning: "ECC page retirement / row remapping recorded: the bad row is marked and takes effect at the next GPU reset; running work continues.",
    faultClass: "transient",
    sample: "NVRM: Xid (PCI:0000:10:1c): 63, pid=1896, Row Remapper: New row marked for remapping, reset gpu to activate.",
    extra: [/New row marked for remapping/i],
    uncertain: "Treated as transient (no immediate action); operators should drain and reset the GPU at a convenient time to activate the remap. Not a restart trigger here.",
  }),
  xid(64, {
    meaning: "ECC page retirement / row remapping recording failure: the bad memory could not be retired; NVIDIA directs a GPU reset and, if it recurs, RMA.",
    faultClass: "fatal",
    sample: "NVRM: Xid (PCI:0000:10:1c): 64, pid=1896, Row Remapper: Failed to mark row for remapping",
    extra: [/row remapp(ing|er).*fail|fail\w* to (mark|record) row/i],
    uncertain: "Classified fatal (quarantine, alert) because the memory can no longer be retired; a reset may recover it once. Exact log wording varies by driver branch.",
  }),
  xid(74, {
    meaning: "NVLink error: a link reported a fatal error or too many replays; peer traffic over that link fails.",
    faultClass: "interconnect",
    sample: "NVRM: Xid (PCI:0000:3b:00): 74, pid=4242, NVLink: fatal error detected on link 4(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
    extra: [/NVLink: fatal error/i],
  }),
  xid(79, {
    meaning: "GPU has fallen off the bus: the host lost PCIe contact with the GPU; only a node reboot (or hardware service) recovers it.",
    faultClass: "fatal",
    sample: "NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, GPU has fallen off the bus.",
    extra: [/fallen off the bus/i],
  }),
  xid(94, {
    meaning: "Contained ECC error: the error was contained to the applications that used the bad memory; other work continues and no GPU reset is needed.",
    faultClass: "transient",
    sample: "NVRM: Xid (PCI:0000:3b:00): 94, pid=4242, name=python3, Contained: SM (0x1). RST: No, D-RST: No",
    extra: [/(?<!Un)\bContained: /],
    uncertain: "Transient for the device. The process whose memory was hit gets cudaErrorECCUncorrectable, a sticky error classified device-reset.",
  }),
  xid(95, {
    meaning: "Uncontained ECC error: every application on the GPU is affected; the GPU must be reset.",
    faultClass: "device-reset",
    sample: "NVRM: Xid (PCI:0000:3b:00): 95, pid=4242, name=python3, Uncontained: LTC TAG (0x2,0x0). RST: Yes, D-RST: No",
    extra: [/\bUncontained: /],
  }),
  xid(119, {
    meaning: "GSP RPC timeout: the GPU System Processor stopped answering the driver; NVIDIA's action is a GPU reset.",
    faultClass: "device-reset",
    sample: "NVRM: Xid (PCI:0000:3b:00): 119, pid=4242, name=python3, Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL).",
    extra: [/waiting for RPC response from GPU\d* GSP/i],
  }),
  // NCCL: collectives between GPUs (NVLink, InfiniBand, RoCE, sockets).
  {
    code: "NCCL_TIMEOUT",
    aliases: ["nccl-timeout", "ncclTimeout"],
    patterns: [/Watchdog caught collective operation timeout/i, /NCCL.*time(d)? ?out/i, /Some NCCL operations have failed or timed out/i],
    meaning: "A collective or point-to-point NCCL operation did not complete within the process-group timeout (watchdog).",
    faultClass: "interconnect",
    scope: "device",
    source: PG_NCCL,
    sample: "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=BROADCAST, NumelIn=131072000, NumelOut=131072000, Timeout(ms)=600000) ran for 600081 milliseconds before timing out.",
  },
  {
    code: "ncclRemoteError",
    aliases: ["NCCL_REMOTE_ERROR"],
    patterns: [/ncclRemoteError|remote process exited or there was a network error/i],
    meaning: "ncclRemoteError (6): a peer process died or the network failed.",
    faultClass: "interconnect",
    scope: "device",
    source: NCCL_TYPES,
    sample: "NCCL error: remote process exited or there was a network error, NCCL version 2.21.5 ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.",
  },
  {
    code: "ncclSystemError",
    aliases: ["NCCL_SYSTEM_ERROR"],
    patterns: [/ncclSystemError|unhandled system error/i],
    meaning: "ncclSystemError (2): a system or network call failed (socket, InfiniBand verbs, shared memory).",
    faultClass: "interconnect",
    scope: "device",
    source: NCCL_TYPES,
    sample: "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5 ncclSystemError: System call (e.g. socket, malloc) or external library call failed or device error.",
    uncertain: "ncclSystemError also covers host malloc failures; treated as interconnect because sockets/IB are by far its usual cause.",
  },
  // CUDA runtime errors (cudaGetErrorString text in the patterns).
  {
    code: "cudaErrorNvlinkUncorrectable",
    numbers: [220],
    patterns: [/cudaErrorNvlinkUncorrectable|uncorrectable NVLink error/i],
    meaning: "cudaErrorNvlinkUncorrectable (220): an uncorrectable NVLink error during execution.",
    faultClass: "interconnect",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: uncorrectable NVLink error detected during the execution",
  },
  {
    code: "cudaErrorECCUncorrectable",
    numbers: [214],
    patterns: [/cudaErrorECCUncorrectable|uncorrectable ECC error encountered/i],
    meaning: "cudaErrorECCUncorrectable (214): an uncorrectable ECC error hit this process; the context is unusable.",
    faultClass: "device-reset",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: uncorrectable ECC error encountered",
  },
  {
    code: "cudaErrorMemoryAllocation",
    numbers: [2],
    aliases: ["CUDA_ERROR_OUT_OF_MEMORY", "OutOfMemoryError"],
    patterns: [/cudaErrorMemoryAllocation|CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|\bout of memory\b/i],
    meaning: "cudaErrorMemoryAllocation (2): not enough device memory for the request.",
    faultClass: "resource",
    scope: "device",
    source: CUDA_TYPES,
    sample: "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.06 GiB is free.",
  },
  {
    code: "cudaErrorIllegalAddress",
    numbers: [700],
    aliases: ["CUDA_ERROR_ILLEGAL_ADDRESS"],
    patterns: [/cudaErrorIllegalAddress|illegal memory access was encountered/i],
    meaning: "cudaErrorIllegalAddress (700): a kernel accessed an illegal address; sticky, the process must be relaunched.",
    faultClass: "device-reset",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: an illegal memory access was encountered",
  },
  {
    code: "cudaErrorLaunchTimeout",
    numbers: [702],
    aliases: ["CUDA_ERROR_LAUNCH_TIMEOUT"],
    patterns: [/cudaErrorLaunchTimeout|the launch timed out and was terminated/i],
    meaning: "cudaErrorLaunchTimeout (702): a kernel exceeded the watchdog limit (display GPUs only); sticky, the process must be relaunched.",
    faultClass: "device-reset",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: the launch timed out and was terminated",
    uncertain: "The issue suggested transient; CUDA documents 702 as leaving the process in an inconsistent state ('must be terminated and relaunched'), so it is device-reset here. Only occurs with kernelExecTimeoutEnabled.",
  },
  {
    code: "cudaErrorLaunchFailure",
    numbers: [719],
    aliases: ["CUDA_ERROR_LAUNCH_FAILED"],
    patterns: [/cudaErrorLaunchFailure|unspecified launch failure/i],
    meaning: "cudaErrorLaunchFailure (719): an exception on the device while executing a kernel; sticky, the process must be relaunched.",
    faultClass: "device-reset",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: unspecified launch failure",
  },
  {
    code: "cudaErrorAssert",
    numbers: [710],
    patterns: [/cudaErrorAssert|device-side assert triggered/i],
    meaning: "cudaErrorAssert (710): a device-side assert fired; the context is unusable until the process is relaunched.",
    faultClass: "device-reset",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: device-side assert triggered",
    uncertain: "Often caused by one request's inputs (poison request); the request actor's k-worker poison rule, not this class, decides that.",
  },
  {
    code: "cudaErrorNoDevice",
    numbers: [100],
    patterns: [/cudaErrorNoDevice|no CUDA-capable device is detected/i],
    meaning: "cudaErrorNoDevice (100): the driver sees no GPU (lost, unbound or not present).",
    faultClass: "fatal",
    scope: "device",
    source: CUDA_TYPES,
    sample: "CUDA error: no CUDA-capable device is detected",
  },
];

export const NVIDIA_TABLE: VendorTable = { vendor: NVIDIA_VENDOR, rules: NVIDIA_RULES };

/** A number is a cudaError_t value; a string is a code name (`cudaErrorIllegalAddress`, `Xid 79`) or a log line. */
export const classifyNvidia = (input: FaultInput): DriverFault => classifyWith(NVIDIA_TABLE, input);
