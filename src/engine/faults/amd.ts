// AMD fault classifier: HIP runtime errors (hipError_t), ROCr (HSA) aborts, amdgpu kernel-driver RAS and
// GPU-reset events, and RCCL collective failures. Kernel/RAS rules come first so a dmesg line is classified
// by its event, not by generic words in it.
//
// Uncorrectable ECC: `device-reset`. amdgpu handles a RAS uncorrectable error by retiring the bad page and
// resetting the GPU (mode-1/BACO), which loses VRAM and every context on it; the device is usable after the
// reset. It becomes `fatal` when the retired-page count passes amdgpu_bad_page_threshold (the driver then
// refuses the GPU and asks for replacement) or when the reset itself fails. Repeated UEs also reach
// quarantine through the K-in-T rule of the policy.
import type { DriverFault } from "../engine.ts";
import { classifyWith, type FaultInput, type FaultRule, type VendorTable } from "./rules.ts";

export const AMD_VENDOR = "amd";

const HIP_TYPES = "HIP hipError_t (rocm.docs.amd.com/projects/HIP/en/latest/reference/error_codes.html)";
const RAS_DOC = "Linux amdgpu RAS documentation and amdgpu_ras.c (docs.kernel.org/gpu/amdgpu/ras.html)";
const AMDGPU_RESET = "Linux amdgpu_device.c GPU recovery (drivers/gpu/drm/amd/amdgpu)";
const RCCL = "RCCL (ncclResult_t, NCCL-compatible) and PyTorch ProcessGroupNCCL watchdog on ROCm";
const ROCR = "ROCr runtime (ROCR-Runtime) HSA status / memory access fault handler";

export const AMD_RULES: ReadonlyArray<FaultRule> = [
  {
    code: "RCCL_TIMEOUT",
    aliases: ["rccl-timeout", "NCCL_TIMEOUT"],
    patterns: [/Watchdog caught collective operation timeout/i, /[RN]CCL.*time(d)? ?out/i],
    meaning: "An RCCL collective did not complete within the process-group timeout (PyTorch on ROCm runs RCCL behind the NCCL process group).",
    faultClass: "interconnect",
    scope: "device",
    source: RCCL,
    sample: "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=64, OpType=ALLREDUCE, NumelIn=1048576, NumelOut=1048576, Timeout(ms)=600000) ran for 600112 milliseconds before timing out.",
  },
  {
    code: "ncclRemoteError",
    aliases: ["rcclRemoteError"],
    patterns: [/ncclRemoteError|remote process exited or there was a network error/i],
    meaning: "RCCL ncclRemoteError (6): a peer process died or the network failed.",
    faultClass: "interconnect",
    scope: "device",
    source: RCCL,
    sample: "RCCL error: remote process exited or there was a network error, ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.",
  },
  {
    code: "amdgpu_ras_xgmi_ue",
    aliases: ["xgmi_ue"],
    patterns: [/uncorrectable hardware errors? detected in xgmi\w* block/i, /\bXGMI\b.*(uncorrectable|link (down|error))/i],
    meaning: "RAS uncorrectable error on the XGMI (Infinity Fabric) link between GPUs.",
    faultClass: "interconnect",
    scope: "device",
    source: RAS_DOC,
    sample: "amdgpu 0000:0c:00.0: amdgpu: 1 uncorrectable hardware errors detected in xgmi_wafl block",
    uncertain: "XGMI UEs may also trigger a hive-wide GPU reset; classified interconnect (re-route) with the reset observed separately as amdgpu_gpu_reset.",
  },
  {
    code: "amdgpu_bad_page_threshold",
    aliases: ["amdgpu_rma"],
    patterns: [/RAS records:\s*\d+ exceed threshold/i, /Replace this GPU or increase the threshold/i, /bad page threshold/i],
    meaning: "Retired (bad) VRAM pages exceed amdgpu_bad_page_threshold: the driver will not initialise the GPU; replace it (RMA).",
    faultClass: "fatal",
    scope: "device",
    source: RAS_DOC,
    sample: "amdgpu 0000:0c:00.0: amdgpu: RAS records:1023 exceed threshold:1000, GPU will not be initialized. Replace this GPU or increase the threshold",
    uncertain: "Exact wording differs across kernel versions (newer kernels also send an RMA CPER record).",
  },
  {
    code: "amdgpu_reset_failed",
    aliases: ["gpu_recovery_failed"],
    patterns: [/GPU Recovery Failed/i, /GPU reset\(\d+\) failed/i, /ASIC reset failed/i],
    meaning: "The driver's GPU recovery failed; the device stays unusable until the node is serviced.",
    faultClass: "fatal",
    scope: "device",
    source: AMDGPU_RESET,
    sample: "amdgpu 0000:0c:00.0: amdgpu: GPU Recovery Failed: -110",
    uncertain: "Message wording taken from amdgpu_device_gpu_recover; it varies between kernel versions.",
  },
  {
    code: "hipErrorECCNotCorrectable",
    numbers: [214],
    patterns: [/hipErrorECCNotCorrectable/],
    meaning: "hipErrorECCNotCorrectable (214): an uncorrectable ECC error was reported to this process.",
    faultClass: "device-reset",
    scope: "device",
    source: HIP_TYPES,
    sample: "HIP error: hipErrorECCNotCorrectable: uncorrectable ECC error encountered",
  },
  {
    code: "amdgpu_ras_ue",
    aliases: ["ras_ue", "amdgpu_uncorrectable_ecc"],
    patterns: [/uncorrectable hardware errors? (detected in \w+ block)?/i, /ERREVENT_ATHUB_INTERRUPT/i, /uncorrectable ECC/i],
    meaning: "RAS uncorrectable (multi-bit) ECC error, e.g. in the UMC (memory) block; the driver retires the page and resets the GPU, VRAM is lost.",
    faultClass: "device-reset",
    scope: "device",
    source: RAS_DOC,
    sample: "amdgpu 0000:0c:00.0: amdgpu: 1 uncorrectable hardware errors detected in umc block",
  },
  {
    code: "amdgpu_ring_soft_recovered",
    aliases: ["soft_recovery"],
    patterns: [/ring \S+ timeout, but soft recovered/i],
    meaning: "A job hung on a ring and the driver soft-recovered it (killed the job's waves) without a GPU reset; the device and other contexts continue.",
    faultClass: "transient",
    scope: "device",
    source: "Linux amdgpu_job.c amdgpu_job_timedout (drivers/gpu/drm/amd/amdgpu)",
    sample: "amdgpu 0000:0c:00.0: amdgpu: ring gfx_0.0.0 timeout, but soft recovered",
    uncertain: "The job that hung is lost; whether the submitting context stays usable depends on the kernel version.",
  },
  {
    code: "amdgpu_ras_ce",
    aliases: ["ras_ce"],
    patterns: [/\d+ correctable hardware errors? detected in \w+ block/i],
    meaning: "RAS correctable ECC errors: corrected by hardware, no work lost; informational (a rising count predicts UEs).",
    faultClass: "transient",
    scope: "device",
    source: RAS_DOC,
    sample: "amdgpu 0000:0c:00.0: amdgpu: 3 correctable hardware errors detected in umc block",
  },
  {
    code: "amdgpu_gpu_reset",
    aliases: ["gpu_reset"],
    patterns: [/GPU reset begin/i, /VRAM is lost due to GPU reset/i, /ring \w+ timeout/i, /GPU reset\(\d+\) succeeded/i],
    meaning: "The amdgpu driver reset the GPU (after a ring timeout, a RAS event or a request); every context and its VRAM are gone.",
    faultClass: "device-reset",
    scope: "device",
    source: AMDGPU_RESET,
    sample: "amdgpu 0000:0c:00.0: amdgpu: ring gfx_0.0.0 timeout, signaled seq=1234, emitted seq=1236; amdgpu: GPU reset begin!",
  },
  {
    code: "hsa_memory_access_fault",
    aliases: ["HSA_STATUS_ERROR_MEMORY_APERTURE_VIOLATION", "HSA_STATUS_ERROR_MEMORY_FAULT"],
    patterns: [/Memory access fault by GPU node-\d+/i, /HSA_STATUS_ERROR_MEMORY_(APERTURE_VIOLATION|FAULT)/],
    meaning: "ROCr caught a GPU page fault for this process and aborts it; the GPU stays healthy, the process must restart.",
    faultClass: "device-reset",
    scope: "device",
    source: ROCR,
    sample: "Memory access fault by GPU node-2 (Agent handle: 0x55d0c0f2a0b0) on address 0x7f3a00000000. Reason: Page not present or supervisor privilege.",
  },
  {
    code: "hipErrorOutOfMemory",
    numbers: [2],
    aliases: ["hipErrorMemoryAllocation", "HSA_STATUS_ERROR_OUT_OF_RESOURCES"],
    patterns: [/hipErrorOutOfMemory|HIP out of memory|HSA_STATUS_ERROR_OUT_OF_RESOURCES|\bout of memory\b/i],
    meaning: "hipErrorOutOfMemory (2): not enough device memory for the request.",
    faultClass: "resource",
    scope: "device",
    source: HIP_TYPES,
    sample: "torch.OutOfMemoryError: HIP out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity of 191.98 GiB of which 2.10 GiB is free.",
  },
  {
    code: "hipErrorIllegalAddress",
    numbers: [700],
    patterns: [/hipErrorIllegalAddress|illegal memory access was encountered/i],
    meaning: "hipErrorIllegalAddress (700): a kernel accessed an illegal address; the context is unusable, restart the process.",
    faultClass: "device-reset",
    scope: "device",
    source: HIP_TYPES,
    sample: "HIP error: an illegal memory access was encountered (hipErrorIllegalAddress)",
  },
  {
    code: "hipErrorLaunchFailure",
    numbers: [719],
    patterns: [/hipErrorLaunchFailure|unspecified launch failure/i],
    meaning: "hipErrorLaunchFailure (719): an exception on the device while running a kernel.",
    faultClass: "device-reset",
    scope: "device",
    source: HIP_TYPES,
    sample: "HIP error: unspecified launch failure (hipErrorLaunchFailure)",
  },
  {
    code: "hipErrorLaunchTimeOut",
    numbers: [702],
    patterns: [/hipErrorLaunchTimeOut|the launch timed out and was terminated/i],
    meaning: "hipErrorLaunchTimeOut (702): a kernel ran past the timeout.",
    faultClass: "device-reset",
    scope: "device",
    source: HIP_TYPES,
    sample: "HIP error: the launch timed out and was terminated (hipErrorLaunchTimeOut)",
    uncertain: "Mirrors cudaErrorLaunchTimeout (sticky on CUDA); whether HIP leaves the context usable is not documented, so the safe class is device-reset.",
  },
  {
    code: "hipErrorNoDevice",
    numbers: [100],
    patterns: [/hipErrorNoDevice|no ROCm-capable device is detected/i],
    meaning: "hipErrorNoDevice (100): no usable GPU is visible to the runtime.",
    faultClass: "fatal",
    scope: "device",
    source: HIP_TYPES,
    sample: "HIP error: no ROCm-capable device is detected (hipErrorNoDevice)",
  },
];

export const AMD_TABLE: VendorTable = { vendor: AMD_VENDOR, rules: AMD_RULES };

/** A number is a hipError_t value; a string is a code name (`hipErrorOutOfMemory`) or a log line. */
export const classifyAmd = (input: FaultInput): DriverFault => classifyWith(AMD_TABLE, input);
