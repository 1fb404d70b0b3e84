// `tandem perf`: print the performance model's prediction for one chip, one model and one phase.
//
//   tandem perf --chip <id> --model <id | shape json> (--prefill <tokens> [--batch N] | --decode <batch>x<context>)
//               [--tp N] [--fp8] [--catalog PATH] [--json]
//
// With --json: one JSON object whose `seconds` is the predicted prefill time or decode step time.
import { parseArgs } from "node:util";
import { positiveInt, UsageError } from "./usage.ts";
import { CatalogError, findAccelerator, loadAcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { findModel, type ModelShape, type ModelSpec, MODELS, modelFromShape, SHAPE_FIELDS } from "../hardware/model-catalog.ts";
import { decodeBreakdown, memoryFit, prefillBreakdown } from "../hardware/performance-model.ts";

export const PERF_HELP = `tandem perf --chip <id> --model <id | shape json> --prefill <tokens> | --decode <batch>x<context>
            [--batch N] [--tp N] [--fp8] [--catalog PATH] [--json]
    Predict prefill time (one forward over <tokens>, --batch prompts) or one decode step time
    (<batch> sequences of <context> tokens) from the hardware performance model (not a measurement).
    --model takes a catalog id (${MODELS.map((m) => m.id).join(", ")}) or a shape JSON with the fields
    ${SHAPE_FIELDS.join(", ")} (dense GQA, SwiGLU, untied embeddings). Weights and KV are bf16 unless --fp8.
    --catalog defaults to ../shared/data/hardware-catalog.json.`;


function parseModel(raw: string): ModelSpec {
  const text = raw.trim();
  if (!text.startsWith("{")) return findModel(text);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--model: bad shape JSON (${(e as Error).message}); expected {${SHAPE_FIELDS.map((f) => `"${f}": N`).join(", ")}}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new UsageError(`--model: shape JSON must be an object with the fields ${SHAPE_FIELDS.join(", ")}`);
  }
  const rec = json as Record<string, unknown>;
  const missing = SHAPE_FIELDS.filter((f) => !(f in rec));
  const unknown = Object.keys(rec).filter((k) => !(SHAPE_FIELDS as readonly string[]).includes(k) && k !== "id" && k !== "name");
  if (missing.length > 0 || unknown.length > 0) {
    const parts = [missing.length ? `missing ${missing.join(", ")}` : "", unknown.length ? `unknown ${unknown.join(", ")}` : ""];
    throw new UsageError(`--model: shape JSON ${parts.filter(Boolean).join("; ")}; fields are ${SHAPE_FIELDS.join(", ")}`);
  }
  const id = typeof rec.id === "string" ? rec.id : "custom";
  const name = typeof rec.name === "string" ? rec.name : "custom shape";
  return modelFromShape(rec as unknown as ModelShape, id, name);
}

const fmtSeconds = (s: number) => (s >= 1 ? `${s.toFixed(3)} s` : `${(s * 1000).toFixed(3)} ms`);

/** Run `tandem perf` with the arguments after `perf`. Returns the exit code (0 ok, 2 usage error). */
export async function runPerf(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        chip: { type: "string" },
        model: { type: "string" },
        prefill: { type: "string" },
        decode: { type: "string" },
        batch: { type: "string" },
        tp: { type: "string" },
        fp8: { type: "boolean" },
        catalog: { type: "string" },
      },
    });
    if (values.help) {
      process.stdout.write(`${PERF_HELP}\n`);
      return 0;
    }
    if (!values.chip) throw new UsageError("--chip <id> is required");
    if (!values.model) throw new UsageError("--model <id | shape json> is required");
    if ((values.prefill === undefined) === (values.decode === undefined)) {
      throw new UsageError("give exactly one of --prefill <tokens> or --decode <batch>x<context>");
    }
    const catalog = loadAcceleratorCatalog(values.catalog);
    const chip = findAccelerator(catalog, values.chip);
    const model = parseModel(values.model);
    const tp = values.tp === undefined ? 1 : positiveInt("tp", values.tp);
    const dtype = values.fp8 ? "fp8" : "bf16";
    const chipOut = { id: chip.id, vendor: chip.vendor, bf16_tflops: chip.bf16_tflops, fp8_tflops: chip.fp8_tflops, hbm_gb: chip.hbm_gb, hbm_tbps: chip.hbm_tbps };
    const modelOut = {
      id: model.id,
      name: model.name,
      params: model.params,
      active_params: model.active_params,
      layers: model.layers,
      hidden: model.hidden,
      heads: model.heads,
      kv_heads: model.kv_heads,
      head_dim: model.head_dim,
      ffn: model.ffn,
      vocab: model.vocab,
      kv_bytes_per_token: model.kv_bytes_per_token[dtype],
    };

    /** The JSON answer: the predicted seconds first, then what it was predicted for and from. */
    const prediction = (phase: string, breakdown: { seconds: number }, inputs: object, memory: object): Record<string, unknown> => ({
      phase,
      seconds: breakdown.seconds,
      inputs,
      chip: chipOut,
      model: modelOut,
      breakdown,
      memory,
      emulated: false,
      predicted: true,
    });
    let out: Record<string, unknown>;
    let line: string;
    if (values.prefill !== undefined) {
      const tokens = positiveInt("prefill", values.prefill);
      const batch = values.batch === undefined ? 1 : positiveInt("batch", values.batch);
      const b = prefillBreakdown(chip, model, tokens, { batch, tp, dtype });
      out = prediction("prefill", b, { tokens, batch, tp, dtype }, memoryFit(chip, model, batch, tokens, { tp, dtype }));
      line = `prefill ${batch}×${tokens} tokens of ${model.id} on ${tp > 1 ? `${tp}× ` : ""}${chip.id} (${dtype}): ${fmtSeconds(b.seconds)} predicted (${Math.round((tokens * batch) / b.seconds)} tok/s)`;
    } else {
      const m = /^(\d+)x(\d+)$/i.exec(values.decode!.trim());
      if (!m) throw new UsageError(`--decode must be <batch>x<context>, e.g. 64x2048, got "${values.decode}"`);
      const batch = positiveInt("decode batch", m[1]!);
      const context = positiveInt("decode context", m[2]!);
      const b = decodeBreakdown(chip, model, batch, context, { tp, dtype });
      out = {
        ...prediction("decode", b, { batch, context, tp, dtype }, memoryFit(chip, model, batch, context, { tp, dtype })),
        tokens_per_s: batch / b.seconds,
      };
      line = `decode step ${batch}×${context} of ${model.id} on ${tp > 1 ? `${tp}× ` : ""}${chip.id} (${dtype}): ${fmtSeconds(b.seconds)} predicted (${Math.round(batch / b.seconds)} tok/s)`;
    }
    const mem = out.memory as ReturnType<typeof memoryFit>;
    if (!mem.fits) line += ` — does NOT fit in memory (max batch at this context: ${mem.maxBatch})`;
    process.stdout.write(values.json ? `${JSON.stringify(out)}\n` : `${line}\n`);
    return 0;
  } catch (e) {
    const err = e as Error;
    const known = e instanceof UsageError || e instanceof CatalogError || err.name === "ModelError" || err.name === "RangeError" || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    if (!known) throw e;
    process.stderr.write(`tandem perf: ${err.message}\n`);
    return 2;
  }
}
