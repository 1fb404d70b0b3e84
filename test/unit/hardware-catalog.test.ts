import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CatalogError, findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel, MODELS, modelFromShape } from "../../src/hardware/model-catalog.ts";

const within = (actual: number, expected: number, rel: number) => expect(Math.abs(actual / expected - 1)).toBeLessThan(rel);

describe("accelerator catalog", () => {
  it("loads all 11 accelerators from the shared file", () => {
    const cat = loadAcceleratorCatalog();
    expect(cat.accelerators).toHaveLength(11);
    const h200 = findAccelerator(cat, "nvidia-h200-sxm");
    expect(h200.hbm_gb).toBe(141);
    expect(h200.measured?.bf16_matmul_tflops).toBe(753);
    expect(findAccelerator(cat, "google-tpu-v5e").fp8_tflops).toBeNull();
  });

  it("merges partial overrides of prices and efficiencies without touching other fields", () => {
    const cat = loadAcceleratorCatalog(undefined, { "intel-gaudi3-hl325l": { usd_per_hour_low: 1.2, mamf_bf16_efficiency: 0.6 } });
    const g = findAccelerator(cat, "intel-gaudi3-hl325l");
    expect(g.usd_per_hour_low).toBe(1.2);
    expect(g.mamf_bf16_efficiency).toBe(0.6);
    expect(g.hbm_tbps).toBe(3.7);
    expect(findAccelerator(loadAcceleratorCatalog(), "intel-gaudi3-hl325l").usd_per_hour_low).toBeNull();
  });

  it("rejects overrides for unknown chips and names the known ids", () => {
    expect(() => loadAcceleratorCatalog(undefined, { "nvidia-h300": { usd_per_hour_low: 1 } })).toThrow(/nvidia-h100-sxm/);
    expect(() => findAccelerator(loadAcceleratorCatalog(), "nope")).toThrow(CatalogError);
  });

  it("accepts an explicit path and validates the content", () => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-cat-"));
    const path = join(dir, "c.json");
    writeFileSync(path, JSON.stringify({ accelerators: [{ id: "x", bf16_tflops: 100, hbm_gb: 10, hbm_tbps: 1 }] }));
    expect(loadAcceleratorCatalog(path).accelerators[0]!.fp8_tflops).toBeNull();
    writeFileSync(path, JSON.stringify({ accelerators: [{ id: "x", bf16_tflops: -1, hbm_gb: 10, hbm_tbps: 1 }] }));
    expect(() => loadAcceleratorCatalog(path)).toThrow(/bf16_tflops/);
    expect(() => loadAcceleratorCatalog(join(dir, "missing.json"))).toThrow(/cannot read/);
  });
});

describe("model catalog", () => {
  it("has the required models", () => {
    for (const id of ["llama-3-8b", "llama-3-70b", "llama-3-405b", "qwen3-32b", "deepseek-v3"]) expect(findModel(id).id).toBe(id);
    expect(() => findModel("gpt-5")).toThrow(/llama-3-8b/);
  });

  it("counts Llama-3 parameters and GQA KV bytes", () => {
    const m = findModel("llama-3-8b");
    within(m.params, 8.03e9, 0.01);
    expect(m.kv_bytes_per_token.bf16).toBe(131072);
    expect(m.kv_bytes_per_token.fp8).toBe(65536);
    within(findModel("llama-3-70b").params, 70.55e9, 0.01);
    within(findModel("llama-3-405b").params, 405.85e9, 0.01);
    expect(findModel("llama-3-70b").kv_bytes_per_token.bf16).toBe(2 * 8 * 128 * 80 * 2);
    within(findModel("qwen3-32b").params, 32.8e9, 0.01);
  });

  it("DeepSeek-V3: 671B total, ~37B active, MLA latent KV (512 + 64 per layer)", () => {
    const m = findModel("deepseek-v3");
    within(m.params, 671e9, 0.01);
    within(m.active_params, 37e9, 0.03);
    expect(m.kv_bytes_per_token.bf16).toBe((512 + 64) * 61 * 2);
    expect(m.kv_bytes_per_token.fp8).toBe((512 + 64) * 61);
    // heads × head_dim would be 128·128·2·61·2 = 4 MB per token: MLA is ~57x smaller
    expect(m.kv_bytes_per_token.bf16).toBeLessThan(2 * 128 * 128 * 61 * 2 / 50);
  });

  it("modelFromShape reproduces a catalog model from its shape and validates fields", () => {
    const l8 = findModel("llama-3-8b");
    const shape = { layers: 32, hidden: 4096, heads: 32, kv_heads: 8, head_dim: 128, ffn: 14336, vocab: 128256 };
    const custom = modelFromShape(shape);
    expect(custom.params).toBe(l8.params);
    expect(custom.kv_bytes_per_token).toEqual(l8.kv_bytes_per_token);
    expect(() => modelFromShape({ ...shape, ffn: 0 })).toThrow(/ffn/);
    expect(() => modelFromShape({ ...shape, kv_heads: 5 })).toThrow(/multiple/);
    expect(MODELS.every((m) => m.active_params <= m.params)).toBe(true);
  });
});
