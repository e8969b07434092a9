/** Which models a configuration serves: the default one, the `models:` entries, the files in model.dir. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { modelSpecs } from "../../src/router/catalog.js";

describe("modelSpecs", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "edgellm-catalog-"));
    for (const name of ["b.gguf", "a.gguf", "Default.gguf", "notes.txt"]) writeFileSync(join(dir, name), "x");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "deep.gguf"), "x");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const config = (models: unknown[] = []) => loadConfig({ set: { "model.dir": dir, "model.contextSize": 2048, models } }, {});

  it("lists the default model first, then the entries, then the other .gguf files directly in model.dir by name", () => {
    const specs = modelSpecs(config([{ id: "big", source: "hf:org/repo:Q8_0", fallbacks: ["hf:org/repo:Q4_0"], contextSize: 8192, kvCacheType: "q8_0" }]), {
      id: "Default",
      path: join(dir, "Default.gguf"),
    });
    expect(specs.map((s) => [s.id, s.sources])).toEqual([
      ["Default", [join(dir, "Default.gguf")]],
      ["big", ["hf:org/repo:Q8_0", "hf:org/repo:Q4_0"]],
      ["a", [join(dir, "a.gguf")]],
      ["b", [join(dir, "b.gguf")]],
    ]);
    // An entry's own settings over the global ones; the rest stay global.
    expect(specs[1]!.model).toMatchObject({ contextSize: 8192, kvCacheType: "q8_0", sequences: 4, dir });
    expect(specs[0]!.model.contextSize).toBe(2048);
  });

  it("an entry with the default model's id gives it fallbacks and settings; a file an entry serves is not listed again", () => {
    const specs = modelSpecs(config([{ id: "Default", source: "ignored.gguf", fallbacks: ["small.gguf"], sequences: 1 }, { id: "named", source: "a.gguf" }]), {
      id: "Default",
      path: join(dir, "Default.gguf"),
    });
    expect(specs.map((s) => [s.id, s.sources])).toEqual([
      ["Default", [join(dir, "Default.gguf"), "small.gguf"]],
      ["named", ["a.gguf"]],
      ["b", [join(dir, "b.gguf")]],
    ]);
    expect(specs[0]!.model.sequences).toBe(1);
  });

  it("model.lora stays with the default model: entries and model.dir files get no adapters", () => {
    const withLora = loadConfig({ set: { "model.dir": dir, "model.lora": ["pirate=/adapters/pirate.gguf"], models: [{ id: "big", source: "hf:org/repo:Q8_0" }] } }, {});
    const specs = modelSpecs(withLora, { id: "Default", path: join(dir, "Default.gguf") });
    expect(specs.map((s) => [s.id, s.model.lora.length])).toEqual([
      ["Default", 1],
      ["big", 0],
      ["a", 0],
      ["b", 0],
    ]);
  });
});
