// The KV head count of a GGUF model, read from its metadata. A llama.cpp state row holds kv_heads × head_dim
// elements without saying how they split; the native layouts (head-major blocks) need the split.
import { Effect } from "effect";
import { readGgufFileInfo } from "node-llama-cpp";
import { DriverFault } from "../engine.ts";

export const ggufKvHeads = (modelPath: string): Effect.Effect<number, DriverFault> =>
  Effect.tryPromise({
    try: () => readGgufFileInfo(modelPath, { readTensorInfo: false }),
    catch: (cause) => new DriverFault({ vendor: "cpu", code: "model_metadata_unreadable", faultClass: "fatal", message: String(cause) }),
  }).pipe(
    Effect.flatMap((info) => {
      const attention = info.architectureMetadata.attention;
      const perLayer = attention?.head_count_kv ?? attention?.head_count;
      const counts = Array.isArray(perLayer) ? [...new Set(perLayer)] : [perLayer];
      return counts.length === 1 && Number.isInteger(counts[0]) && counts[0]! > 0
        ? Effect.succeed(counts[0]!)
        : Effect.fail(
          new DriverFault({
            vendor: "cpu",
            code: "model_metadata_unsupported",
            faultClass: "fatal",
            message: `${modelPath}: KV heads ${JSON.stringify(perLayer)} are not one positive count for every layer`,
          }),
        );
    }),
  );
