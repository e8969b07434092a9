/**
 * Which models the configuration serves: the default model (`model.source`, loaded at start),
 * every `models:` entry, and every `.gguf` file directly in `model.dir` under its file name.
 */
import { readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import type { Config, ModelEntry } from "../config/schema.js";
import { modelIdFromPath } from "../models/resolve.js";
import type { ModelSpec } from "./served-model.js";

/**
 * The `model.*` settings of one `models:` entry: the global ones with the entry's own on top.
 * `model.lora` names adapters of the default model's weights, so no other model inherits them.
 */
function entrySettings(config: Config, entry: ModelEntry): Config["model"] {
  const { id: _id, source: _source, fallbacks: _fallbacks, ...own } = entry;
  return { ...config.model, lora: [], ...own };
}

const realpath = (file: string) => {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
};

/** `defaultModel`: the resolved default model (its id and file). */
export function modelSpecs(config: Config, defaultModel: { id: string; path: string }): ModelSpec[] {
  // A `models:` entry with the default model's id gives it fallbacks and settings; its source stays model.source.
  const own = config.models.find((e) => e.id === defaultModel.id);
  const specs: ModelSpec[] = [
    { id: defaultModel.id, sources: [defaultModel.path, ...(own?.fallbacks ?? [])], model: own ? { ...entrySettings(config, own), lora: config.model.lora } : config.model },
  ];
  const ids = new Set([defaultModel.id]);
  for (const entry of config.models) {
    if (ids.has(entry.id)) continue;
    ids.add(entry.id);
    specs.push({ id: entry.id, sources: [entry.source, ...(entry.fallbacks ?? [])], model: entrySettings(config, entry) });
  }
  // A file some model already serves is not listed again under its file name.
  const known = new Set(
    specs
      .flatMap((s) => s.sources)
      .filter((s) => s.toLowerCase().endsWith(".gguf"))
      .flatMap((s) => [realpath(path.resolve(s)), realpath(path.resolve(config.model.dir, s))]),
  );
  for (const file of ggufFiles(config.model.dir)) {
    const id = modelIdFromPath(file);
    if (ids.has(id) || known.has(realpath(file))) continue;
    ids.add(id);
    specs.push({ id, sources: [file], model: { ...config.model, lora: [] } });
  }
  return specs;
}

function ggufFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && d.name.toLowerCase().endsWith(".gguf"))
      .map((d) => d.name);
  } catch {
    return [];
  }
  return names.sort().map((name) => path.resolve(dir, name));
}
