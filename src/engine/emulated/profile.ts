// A hardware profile: which accelerator an emulated engine pretends to be, which model its timing is scaled
// to, and how that model is deployed there (tensor parallel, weight dtype). The real engine underneath runs
// its own (tiny) model for the tokens; the profile only decides timing and the KV format on the wire.
import { type Accelerator, type AcceleratorCatalog, findAccelerator } from "../../hardware/accelerator-catalog.ts";
import { type Dtype, findModel, type ModelSpec } from "../../hardware/model-catalog.ts";
import { maxBatch } from "../../hardware/performance-model.ts";

export interface EmulationSpec {
  /** Accelerator id from the hardware catalog, e.g. `nvidia-b200`. */
  readonly chip: string;
  /** Model-catalog id whose shapes the timing uses, e.g. `llama-3-8b`. */
  readonly model: string;
  readonly tp: number;
  /** Weight and compute dtype of the emulated deployment (timing only). */
  readonly dtype: Dtype;
  /** Multiplies every emulated delay: 1 is the predicted speed, 0.01 is a hundred times faster, 0 no delay. */
  readonly timeScale: number;
  /** KV dtype on the wire: `auto` (the real engine's, exact), `fp8` (the chip's fp8 flavour) or a KV dtype. */
  readonly kvDtype: string;
}

/** The model whose timing an emulated engine follows unless told otherwise. */
export const DEFAULT_EMULATED_MODEL = "llama-3-8b";

export interface HardwareProfile {
  readonly chip: Accelerator;
  readonly model: ModelSpec;
  readonly tp: number;
  readonly dtype: Dtype;
  readonly timeScale: number;
  readonly kvDtype: string;
}

/** A human label: `nvidia-b200 (emulated: llama-3-8b, tp 1, bf16)`. */
export const profileLabel = (p: HardwareProfile): string =>
  `${p.chip.id} (emulated: ${p.model.id}, tp ${p.tp}, ${p.dtype})`;

/**
 * The profile for `spec`: the chip and model looked up in their catalogs (an unknown id fails listing the
 * valid ones), and a check that the model's weights fit on the chip at that tensor-parallel degree with room
 * for at least one sequence of `contextSize` tokens.
 */
export const resolveProfile = (catalog: AcceleratorCatalog, spec: EmulationSpec, contextSize: number): HardwareProfile => {
  const chip = findAccelerator(catalog, spec.chip);
  const model = findModel(spec.model);
  if (!Number.isInteger(spec.tp) || spec.tp < 1) throw new RangeError(`emulated tensor parallelism must be a positive integer, got ${spec.tp}`);
  if (!(spec.timeScale >= 0 && Number.isFinite(spec.timeScale))) throw new RangeError(`emulation time scale must be a finite number ≥ 0, got ${spec.timeScale}`);
  if (maxBatch(chip, model, contextSize, { tp: spec.tp, dtype: spec.dtype }) < 1) {
    throw new RangeError(
      `${model.id} (${spec.dtype}) does not fit on ${spec.tp} × ${chip.id} with a ${contextSize}-token sequence; raise TANDEM_EMULATE_TP`,
    );
  }
  return { chip, model, tp: spec.tp, dtype: spec.dtype, timeScale: spec.timeScale, kvDtype: spec.kvDtype };
};
