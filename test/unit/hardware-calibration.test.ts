// Calibration must-show (issue 4): the performance model predicts every prefill and decode point measured on
// a real H200 with Llama-3-8B shapes within 10%. Decode uses `step_s` (CUDA-graph step, what a serving engine
// runs), not `step_s_eager` (adds Python kernel-launch time).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { findAccelerator, loadAcceleratorCatalog } from "../../src/hardware/accelerator-catalog.ts";
import { findModel } from "../../src/hardware/model-catalog.ts";
import { decodeStepSeconds, prefillSeconds } from "../../src/hardware/performance-model.ts";

interface Calibration {
  model: { layers: number; hidden: number; heads: number; kv_heads: number; head_dim: number; ffn: number; vocab: number; params: number; kv_bytes_per_token: number };
  prefill: { tokens: number; seconds: number }[];
  decode: { batch: number; context: number; step_s: number }[];
}

const file = resolve(process.cwd(), "../shared/data/calibration/h200-llama3-8b.json");
const cal = JSON.parse(readFileSync(file, "utf8")) as Calibration;
const chip = findAccelerator(loadAcceleratorCatalog(), "nvidia-h200-sxm");
const model = findModel("llama-3-8b");
const TOLERANCE = 0.1;

describe("H200 Llama-3-8B calibration", () => {
  it("uses the same shape as the calibration run", () => {
    for (const f of ["layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab"] as const) expect(model[f]).toBe(cal.model[f]);
    expect(model.kv_bytes_per_token.bf16).toBe(cal.model.kv_bytes_per_token);
    expect(Math.abs(model.params / cal.model.params - 1)).toBeLessThan(1e-5);
  });

  it("has points to check", () => {
    expect(cal.prefill.length).toBeGreaterThanOrEqual(4);
    expect(cal.decode.length).toBeGreaterThanOrEqual(7);
  });

  for (const p of cal.prefill) {
    it(`prefill ${p.tokens} tokens within 10%`, () => {
      const predicted = prefillSeconds(chip, model, p.tokens);
      expect(Math.abs(predicted / p.seconds - 1)).toBeLessThan(TOLERANCE);
    });
  }

  for (const p of cal.decode) {
    it(`decode batch ${p.batch} × context ${p.context} within 10%`, () => {
      const predicted = decodeStepSeconds(chip, model, p.batch, p.context);
      expect(Math.abs(predicted / p.step_s - 1)).toBeLessThan(TOLERANCE);
    });
  }
});
