import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { FaultClass } from "../../src/engine/engine.ts";
import {
  classifyAmd,
  classifyCpu,
  classifyFault,
  classifyGaudi,
  classifyNvidia,
  CLASSIFIERS,
  FAULT_VENDORS,
  faultScope,
  type FaultInput,
  VENDOR_TABLES,
} from "../../src/engine/faults/index.ts";

type Row = readonly [input: FaultInput, code: string, faultClass: FaultClass];

// The codes the issue names, written out independently of the rule tables.
const NVIDIA: ReadonlyArray<Row> = [
  [2, "cudaErrorMemoryAllocation", "resource"],
  ["cudaErrorMemoryAllocation", "cudaErrorMemoryAllocation", "resource"],
  ["CUDA error: out of memory", "cudaErrorMemoryAllocation", "resource"],
  ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB", "cudaErrorMemoryAllocation", "resource"],
  [700, "cudaErrorIllegalAddress", "device-reset"],
  ["CUDA error: an illegal memory access was encountered", "cudaErrorIllegalAddress", "device-reset"],
  [702, "cudaErrorLaunchTimeout", "device-reset"],
  [719, "cudaErrorLaunchFailure", "device-reset"],
  [214, "cudaErrorECCUncorrectable", "device-reset"],
  ["NVRM: Xid (PCI:0000:3b:00): 13, pid=1, Graphics Exception", "Xid13", "transient"],
  ["NVRM: Xid (PCI:0000:3b:00): 31, pid=1, MMU Fault", "Xid31", "transient"],
  ["NVRM: Xid (PCI:0000:3b:00): 43, pid=1, Ch 00000010", "Xid43", "transient"],
  ["NVRM: Xid (PCI:0000:3b:00): 48, pid=1, DBE", "Xid48", "device-reset"],
  ["NVRM: Xid (PCI:0000:10:1c): 63, pid=1896, Row Remapper: New row marked for remapping, reset gpu to activate.", "Xid63", "transient"],
  ["Xid 64", "Xid64", "fatal"],
  ["NVRM: Xid (PCI:0000:3b:00): 74, pid=1, NVLink: fatal error detected on link 4", "Xid74", "interconnect"],
  ["NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.", "Xid79", "fatal"],
  ["Xid 94", "Xid94", "transient"],
  ["Xid:95", "Xid95", "device-reset"],
  ["GPU has fallen off the bus.", "Xid79", "fatal"],
  ["[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran for 600081 milliseconds before timing out.", "NCCL_TIMEOUT", "interconnect"],
  ["NCCL_TIMEOUT", "NCCL_TIMEOUT", "interconnect"],
];

const AMD: ReadonlyArray<Row> = [
  [2, "hipErrorOutOfMemory", "resource"],
  ["hipErrorOutOfMemory", "hipErrorOutOfMemory", "resource"],
  ["torch.OutOfMemoryError: HIP out of memory. Tried to allocate 4.00 GiB", "hipErrorOutOfMemory", "resource"],
  [700, "hipErrorIllegalAddress", "device-reset"],
  ["hipErrorIllegalAddress", "hipErrorIllegalAddress", "device-reset"],
  ["amdgpu 0000:0c:00.0: amdgpu: 2 uncorrectable hardware errors detected in umc block", "amdgpu_ras_ue", "device-reset"],
  ["amdgpu: uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!", "amdgpu_ras_ue", "device-reset"],
  ["amdgpu: RAS records:1001 exceed threshold:1000, GPU will not be initialized. Replace this GPU or increase the threshold", "amdgpu_bad_page_threshold", "fatal"],
  ["amdgpu 0000:0c:00.0: amdgpu: GPU reset begin!", "amdgpu_gpu_reset", "device-reset"],
  ["[drm] VRAM is lost due to GPU reset!", "amdgpu_gpu_reset", "device-reset"],
  ["amdgpu: GPU Recovery Failed: -110", "amdgpu_reset_failed", "fatal"],
  ["[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLGATHER) ran for 600000 milliseconds before timing out.", "RCCL_TIMEOUT", "interconnect"],
  ["RCCL timeout on rank 3", "RCCL_TIMEOUT", "interconnect"],
  ["amdgpu: 1 uncorrectable hardware errors detected in xgmi_wafl block", "amdgpu_ras_xgmi_ue", "interconnect"],
];

const GAUDI: ReadonlyArray<Row> = [
  [17, "synDeviceReset", "device-reset"],
  ["synDeviceReset", "synDeviceReset", "device-reset"],
  ["habanalabs 0000:19:00.0: Going to reset device", "synDeviceReset", "device-reset"],
  ["habanalabs hl0: Going to RESET device!", "synDeviceReset", "device-reset"],
  ["HL_NOTIFIER_EVENT_CRITICAL_HW_ERR", "hl_critical_error", "fatal"],
  ["habanalabs 0000:19:00.0: critical error interrupt", "hl_critical_error", "fatal"],
  ["habanalabs 0000:19:00.0: Failed to reset! Device is NOT usable", "hl_device_unusable", "fatal"],
  ["[Rank 2] Watchdog caught collective operation timeout: WorkHCCL(SeqNum=17) ran for 1800432 milliseconds before timing out.", "HCCL_TIMEOUT", "interconnect"],
  ["HCCL timeout waiting for peer", "HCCL_TIMEOUT", "interconnect"],
  [4, "synOutOfDeviceMemory", "resource"],
  ["Out of device memory", "synOutOfDeviceMemory", "resource"],
  [14, "synFailedToAllocateDeviceMemory", "resource"],
];

const CPU: ReadonlyArray<Row> = [
  ["ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 1073741824", "allocation_failed", "resource"],
  ["std::bad_alloc", "allocation_failed", "resource"],
  ["allocation_failed", "allocation_failed", "resource"],
  ["context size exceeded", "context_overflow", "resource"],
  ["decode: failed to find a memory slot for batch of size 512", "context_overflow", "resource"],
  ["The context size is too small to generate a response", "context_overflow", "resource"],
  ["Failed to load state from file. Current context sequence size may be smaller that the state of the file", "state_load_rejected", "fatal"],
  ["state_read_data: incompatible V transposition", "state_load_rejected", "fatal"],
  ["n_stream mismatch", "state_load_rejected", "fatal"],
  ["state_load_rejected", "state_load_rejected", "fatal"],
];

const cases: ReadonlyArray<readonly [string, (input: FaultInput) => ReturnType<typeof classifyCpu>, ReadonlyArray<Row>]> = [
  ["nvidia", classifyNvidia, NVIDIA],
  ["amd", classifyAmd, AMD],
  ["intel-gaudi", classifyGaudi, GAUDI],
  ["cpu", classifyCpu, CPU],
];

describe("vendor fault classifiers", () => {
  for (const [vendor, classify, rows] of cases) {
    describe(vendor, () => {
      it.each(rows.map(([input, code, faultClass]) => ({ input, code, faultClass })))(
        "$input → $code ($faultClass)",
        ({ input, code, faultClass }) => {
          const fault = classify(input);
          expect(fault).toMatchObject({ _tag: "DriverFault", vendor, code, faultClass });
        },
      );
    });
  }

  for (const vendor of FAULT_VENDORS) {
    const table = VENDOR_TABLES[vendor];
    const classify = CLASSIFIERS[vendor];
    describe(`${vendor} table`, () => {
      it.each(table.rules.map((r) => ({ code: r.code, rule: r })))("$code: sample, name and numbers map back to it", ({ rule }) => {
        expect(classify(rule.sample)).toMatchObject({ code: rule.code, faultClass: rule.faultClass, message: rule.sample });
        expect(classify(rule.code)).toMatchObject({ code: rule.code, faultClass: rule.faultClass });
        for (const alias of rule.aliases ?? []) expect(classify(alias).code).toBe(rule.code);
        for (const n of rule.numbers ?? []) {
          expect(classify(n)).toMatchObject({ code: rule.code, faultClass: rule.faultClass });
          expect(classify({ code: n, message: "whatever" })).toMatchObject({ code: rule.code, message: "whatever" });
        }
      });

      it("has unique codes and unique enum numbers", () => {
        const codes = table.rules.map((r) => r.code);
        expect(new Set(codes).size).toBe(codes.length);
        const numbers = table.rules.flatMap((r) => r.numbers ?? []);
        expect(new Set(numbers).size).toBe(numbers.length);
      });

      it("cites a source for every row", () => {
        for (const r of table.rules) expect(r.source.length).toBeGreaterThan(10);
      });
    });
  }

  it("prefers a structured code over the message and keeps the raw message", () => {
    const fault = classifyNvidia({ code: 700, message: "CUDA out of memory" });
    expect(fault).toMatchObject({ code: "cudaErrorIllegalAddress", faultClass: "device-reset", message: "CUDA out of memory" });
  });

  it("falls back to the message when the code is unknown", () => {
    expect(classifyAmd({ code: 12345, message: "HIP out of memory" })).toMatchObject({ code: "hipErrorOutOfMemory", faultClass: "resource" });
  });

  it("accepts an Error", () => {
    expect(classifyCpu(new Error("llama_state_seq_set_data: failed to restore sequence state"))).toMatchObject({
      code: "state_load_rejected",
      faultClass: "fatal",
    });
  });

  it("classifies unknown input as transient, keeping the raw text or number", () => {
    expect(classifyNvidia("something odd happened")).toMatchObject({ code: "unknown", faultClass: "transient", message: "something odd happened" });
    expect(classifyNvidia(31337)).toMatchObject({ code: "31337", faultClass: "transient" });
    expect(classifyNvidia("NVRM: Xid (PCI:0000:3b:00): 154, pid=1, recovery action changed")).toMatchObject({ code: "unknown", faultClass: "transient" });
    expect(classifyGaudi({})).toMatchObject({ code: "unknown", faultClass: "transient", message: "" });
    expect(classifyFault("acme", "boom")).toMatchObject({ vendor: "acme", code: "unknown", faultClass: "transient", message: "boom" });
  });

  it("does not confuse Xid numbers that are prefixes of others", () => {
    expect(classifyNvidia("NVRM: Xid (PCI:0000:3b:00): 119, pid=1, Timeout after 6s").code).toBe("Xid119");
    expect(classifyNvidia("NVRM: Xid (PCI:0000:3b:00): 131, pid=1").code).toBe("unknown");
  });

  it("scopes a rejected state load to the request, everything else to the device", () => {
    expect(faultScope(classifyCpu("incompatible V transposition"))).toBe("request");
    expect(faultScope(classifyCpu("failed to allocate"))).toBe("device");
    expect(faultScope(classifyNvidia("Xid 79"))).toBe("device");
    expect(faultScope({ vendor: "acme", code: "x" })).toBe("device");
  });

  it("keeps the codes the llama.cpp engine already raises", () => {
    for (const code of ["allocation_failed", "state_load_rejected", "decode_failed", "state_save_failed", "kv_erase_failed", "model_load_failed", "backend_unavailable"]) {
      expect(classifyCpu(code).code).toBe(code);
    }
  });

  it("documents every code in docs/faults.md", () => {
    const doc = readFileSync(new URL("../../docs/faults.md", import.meta.url), "utf8");
    for (const vendor of FAULT_VENDORS) {
      for (const r of VENDOR_TABLES[vendor].rules) expect(doc, `${vendor}/${r.code}`).toContain(`\`${r.code}\``);
    }
  });
});
