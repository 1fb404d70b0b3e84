// Which KV format an emulated chip puts on the wire: the layout of the serving stack that vendor's chips
// run, in the dtype the operator asks for.
//
//   NVIDIA        vllm-flash-attention  vLLM's default attention backend on Hopper and Blackwell:
//                                       per layer (2, blocks, 16, kv_heads, head_dim)
//   AMD           rocm-flash-attention  vLLM on ROCm (MI300X/MI325X/MI355X): the same block layout; its fp8
//                                       flavour follows the chip (e4m3fnuz on MI300X/MI325X, OCP e4m3fn on MI355X)
//   Intel         vllm-gaudi            vLLM-Gaudi: K and V as separate token-major caches, 128-token blocks
//   anyone else   canonical             Tandem's vendor-neutral form: src/kv has no preset for TPU or
//                                       Trainium serving stacks, and inventing one would misstate them
//
// Dtype: `auto` (the default) keeps the real engine's KV dtype — f16 for llama.cpp — so the bytes on the
// wire carry exactly the numbers the real engine computed and tokens equal a monolithic run. Real vLLM
// does the same with `--kv-cache-dtype auto` (the model's dtype). `bf16` and the fp8 dtypes are lossy for
// f16 KV (bf16 keeps 8 significant bits, fp8 3 or 4): the greedy tokens after such a round trip may differ
// from the monolithic run (`fp8` picks the chip's own fp8 flavour; the ROCm preset's fp8_e4m3fnuz default
// is what `fp8` gives on MI300X).
import type { Accelerator } from "../../hardware/accelerator-catalog.ts";
import type { KvDtype } from "../../kv/descriptor.ts";
import { isKvDtype } from "./native-kv-format.ts";

const FAMILY_BY_VENDOR: Readonly<Record<string, string>> = {
  nvidia: "vllm-flash-attention",
  amd: "rocm-flash-attention",
  intel: "vllm-gaudi",
};

export const vendorKvFamily = (chip: Accelerator): string => FAMILY_BY_VENDOR[chip.vendor.toLowerCase()] ?? "canonical";

/** The chip's fp8 KV dtype from the catalog's `fp8_format`, or undefined when it has none. */
const chipFp8 = (chip: Accelerator): KvDtype | undefined =>
  chip.fp8_format.includes("e4m3fnuz") ? "fp8_e4m3fnuz" : chip.fp8_format.includes("e4m3fn") ? "fp8_e4m3fn" : undefined;

/** The wire dtype for `requested` (`auto`, `fp8` or a KV dtype name) on `chip`, whose real engine stores `engineDtype`. */
export const vendorKvDtype = (chip: Accelerator, requested: string, engineDtype: KvDtype): KvDtype => {
  if (requested === "auto") return engineDtype;
  if (requested === "fp8") {
    const fp8 = chipFp8(chip);
    if (fp8 === undefined) throw new RangeError(`${chip.id} has no fp8 KV format (catalog fp8_format: ${chip.fp8_format})`);
    return fp8;
  }
  if (isKvDtype(requested)) return requested;
  throw new RangeError(`unknown KV dtype "${requested}"; use auto, fp8, f32, f16, bf16, fp8_e4m3fn, fp8_e4m3fnuz or fp8_e5m2`);
};
