import { describe, expect, it } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { decodeBreakdown, decodeStepSeconds, maxBatch, memoryFit, prefillSeconds } from "../../src/hardware/performance-model.ts";
import { runPerf } from "../../src/cli/perf.ts";

const cat = loadAcceleratorCatalog();
const h100 = findAccelerator(cat, "nvidia-h100-sxm");
const h200 = findAccelerator(cat, "nvidia-h200-sxm");
const b200 = findAccelerator(cat, "nvidia-b200");
const gaudi = findAccelerator(cat, "intel-gaudi3-hl325l");
const l8 = findModel("llama-3-8b");
const l70 = findModel("llama-3-70b");
const ds = findModel("deepseek-v3");

describe("memory capacity", () => {
  it("Llama-3-70B bf16 does not fit one 80 GB chip, fits in fp8, and fits on 2 with tp", () => {
    expect(memoryFit(h100, l70, 1, 1024).fits).toBe(false);
    expect(maxBatch(h100, l70, 1024)).toBe(0);
    expect(memoryFit(h100, l70, 1, 1024, { dtype: "fp8" }).fits).toBe(true);
    expect(memoryFit(h100, l70, 1, 1024, { tp: 2 }).fits).toBe(true);
  });

  it("max batch shrinks with context and is exactly the limit", () => {
    const b2k = maxBatch(h200, l8, 2048);
    const b8k = maxBatch(h200, l8, 8192);
    expect(b8k).toBeLessThan(b2k);
    expect(memoryFit(h200, l8, b8k, 8192).fits).toBe(true);
    expect(memoryFit(h200, l8, b8k + 1, 8192).fits).toBe(false);
  });

  it("DeepSeek-V3 needs several chips even in fp8; its MLA KV is replicated across tp", () => {
    expect(memoryFit(b200, ds, 1, 4096, { dtype: "fp8" }).fits).toBe(false);
    expect(memoryFit(b200, ds, 1, 4096, { dtype: "fp8", tp: 8 }).fits).toBe(true);
    expect(memoryFit(b200, ds, 1, 4096, { tp: 8 }).kvBytesPerChip).toBe(4096 * ds.kv_bytes_per_token.bf16);
  });
});

describe("performance model shape", () => {
  it("prefill grows super-linearly in tokens at long prompts (attention term)", () => {
    const t8 = prefillSeconds(h200, l8, 8192);
    const t32 = prefillSeconds(h200, l8, 32768);
    expect(t32 / t8).toBeGreaterThan(4.2);
  });

  it("fp8 halves bytes and speeds up prefill where the chip has fp8", () => {
    const bf = decodeBreakdown(h200, l8, 32, 2048);
    const f8 = decodeBreakdown(h200, l8, 32, 2048, { dtype: "fp8" });
    expect(f8.weightBytes).toBe(bf.weightBytes / 2);
    expect(f8.kvBytes).toBe(bf.kvBytes / 2);
    expect(prefillSeconds(b200, l8, 4096, { dtype: "fp8" })).toBeLessThan(prefillSeconds(b200, l8, 4096) * 0.7);
  });

  it("decode is bandwidth-bound at small batch: B200 (8 TB/s) beats Gaudi 3 (3.7 TB/s)", () => {
    expect(decodeStepSeconds(b200, l70, 16, 4096, { tp: 2 })).toBeLessThan(decodeStepSeconds(gaudi, l70, 16, 4096, { tp: 2 }));
  });

  it("tensor parallel speeds things up but adds all-reduce cost", () => {
    const one = decodeBreakdown(h200, l70, 8, 2048, { dtype: "fp8" });
    const two = decodeBreakdown(h200, l70, 8, 2048, { dtype: "fp8", tp: 2 });
    expect(two.seconds).toBeLessThan(one.seconds);
    expect(two.seconds).toBeGreaterThan(one.seconds / 2 - 0.01);
    expect(two.commSeconds).toBeGreaterThan(0);
  });

  it("MoE decode reads more experts as the batch grows", () => {
    const small = decodeBreakdown(b200, ds, 1, 1024, { dtype: "fp8", tp: 8 });
    const big = decodeBreakdown(b200, ds, 256, 1024, { dtype: "fp8", tp: 8 });
    expect(big.weightBytes).toBeGreaterThan(small.weightBytes * 5);
  });

  it("rejects bad inputs", () => {
    expect(() => prefillSeconds(h200, l8, 0)).toThrow(RangeError);
    expect(() => decodeStepSeconds(h200, l8, 0, 10)).toThrow(RangeError);
  });
});

describe("tandem perf", () => {
  const capture = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const o = process.stdout.write.bind(process.stdout);
    const e = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (err.push(s), true)) as typeof process.stderr.write;
    try {
      const code = await runPerf(argv);
      return { code, out: out.join(""), err: err.join("") };
    } finally {
      process.stdout.write = o;
      process.stderr.write = e;
    }
  };

  it("--json prints one object with seconds equal to the model's prediction", async () => {
    const r = await capture(["--chip", "nvidia-h200-sxm", "--model", "llama-3-8b", "--decode", "64x2048", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.seconds).toBeCloseTo(decodeStepSeconds(h200, l8, 64, 2048), 12);
    expect(j).toMatchObject({ emulated: false, predicted: true, phase: "decode", inputs: { batch: 64, context: 2048, tp: 1, dtype: "bf16" } });
  });

  it("accepts a shape JSON and --fp8 --tp for prefill", async () => {
    const shape = '{"layers":80,"hidden":8192,"heads":64,"kv_heads":8,"head_dim":128,"ffn":28672,"vocab":128256}';
    const r = await capture(["--chip", "nvidia-b200", "--model", shape, "--prefill", "4096", "--tp", "2", "--fp8", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.seconds).toBeCloseTo(prefillSeconds(b200, l70, 4096, { tp: 2, dtype: "fp8" }), 12);
    expect(j.model.params).toBe(l70.params);
  });

  it("prints a one-line summary without --json", async () => {
    const r = await capture(["--chip", "nvidia-h100-sxm", "--model", "llama-3-8b", "--prefill", "2048"]);
    expect(r.code).toBe(0);
    expect(r.out.trim().split("\n")).toHaveLength(1);
    expect(r.out).toMatch(/predicted/);
  });

  it("explains unknown chips, unknown models and bad shapes", async () => {
    const chip = await capture(["--chip", "h999", "--model", "llama-3-8b", "--prefill", "1"]);
    expect(chip.code).toBe(2);
    expect(chip.err).toMatch(/nvidia-b200/);
    const model = await capture(["--chip", "nvidia-b200", "--model", "gpt-9", "--prefill", "1"]);
    expect(model.code).toBe(2);
    expect(model.err).toMatch(/deepseek-v3/);
    const shape = await capture(["--chip", "nvidia-b200", "--model", '{"layers":2}', "--prefill", "1"]);
    expect(shape.code).toBe(2);
    expect(shape.err).toMatch(/kv_heads/);
    const bad = await capture(["--chip", "nvidia-b200", "--model", "llama-3-8b", "--decode", "64"]);
    expect(bad.code).toBe(2);
  });
});
