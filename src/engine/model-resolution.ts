// Finds the GGUF model file: an explicit path (`--model` / TANDEM_MODEL), else ./models/, else
// ../shared/models/ (where CI keeps test models). Fails with instructions rather than a stack trace.
import { existsSync, readdirSync } from "node:fs";
import { basename, join, resolve } from "node:path";

export const DEFAULT_MODEL_FILE = "stories260K.gguf";

export class ModelNotFound extends Error {
  override readonly name = "ModelNotFound";
}

const firstGguf = (dir: string): string | undefined => {
  if (!existsSync(dir)) return undefined;
  if (existsSync(join(dir, DEFAULT_MODEL_FILE))) return join(dir, DEFAULT_MODEL_FILE);
  const found = readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort()[0];
  return found === undefined ? undefined : join(dir, found);
};

export const resolveModelPath = (explicit: string | undefined, cwd = process.cwd()): string => {
  const requested = explicit ?? process.env.TANDEM_MODEL;
  if (requested !== undefined && requested !== "") {
    const path = resolve(cwd, requested);
    if (existsSync(path)) return path;
    throw new ModelNotFound(`model file ${path} does not exist (from ${explicit ? "--model" : "TANDEM_MODEL"})`);
  }
  const searched = [join(cwd, "models"), resolve(cwd, "..", "shared", "models")];
  for (const dir of searched) {
    const found = firstGguf(dir);
    if (found) return found;
  }
  throw new ModelNotFound(
    [
      `no GGUF model found (looked in ${searched.join(" and ")}).`,
      `Put a .gguf file in ./models/, or pass --model <path> / set TANDEM_MODEL.`,
      `The test model is llama.cpp's stories260K.gguf (1.2 MB); with internet access,`,
      `\`npx node-llama-cpp pull --dir ./models <hf:user/repo/file.gguf>\` downloads one from Hugging Face.`,
    ].join(" "),
  );
};

export const modelIdOf = (path: string) => basename(path).replace(/\.gguf$/i, "");
