/**
 * Reading config files: cheap to import (no schema library), so the CLI can read the shipped
 * defaults before the full loader (load.ts) is imported.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../../config/default.yaml", import.meta.url));

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export function readYaml(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc == null) return {};
  if (!isObject(doc)) throw new ConfigError(`config file ${path} must hold a mapping at the top level`);
  return doc;
}
