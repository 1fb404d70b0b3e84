import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ModelNotFound, modelIdOf, resolveModelPath } from "../../src/engine/model-resolution.ts";

const layout = () => {
  const root = mkdtempSync(join(tmpdir(), "tandem-models-"));
  const project = join(root, "project");
  mkdirSync(join(root, "shared", "models"), { recursive: true });
  mkdirSync(project);
  return { root, project };
};

describe("model resolution", () => {
  it("an explicit path wins, and a missing one is an error that names it", () => {
    const { root, project } = layout();
    writeFileSync(join(root, "m.gguf"), "x");
    expect(resolveModelPath(join(root, "m.gguf"), project)).toBe(join(root, "m.gguf"));
    expect(() => resolveModelPath(join(root, "absent.gguf"), project)).toThrow(/absent\.gguf does not exist/);
  });

  it("falls back from ./models/ to ../shared/models/", () => {
    const { root, project } = layout();
    writeFileSync(join(root, "shared", "models", "stories260K.gguf"), "x");
    expect(resolveModelPath(undefined, project)).toBe(join(root, "shared", "models", "stories260K.gguf"));
    mkdirSync(join(project, "models"));
    writeFileSync(join(project, "models", "mine.gguf"), "x");
    expect(resolveModelPath(undefined, project)).toBe(join(project, "models", "mine.gguf"));
  });

  it("with no model anywhere, says where it looked and how to get one", () => {
    const { project } = layout();
    const saved = process.env.TANDEM_MODEL;
    delete process.env.TANDEM_MODEL;
    try {
      expect(() => resolveModelPath(undefined, project)).toThrow(ModelNotFound);
      expect(() => resolveModelPath(undefined, project)).toThrow(/--model <path>.*TANDEM_MODEL.*hf:/s);
    } finally {
      if (saved !== undefined) process.env.TANDEM_MODEL = saved;
    }
  });

  it("names a model by its file", () => {
    expect(modelIdOf("/x/stories260K.gguf")).toBe("stories260K");
  });
});
