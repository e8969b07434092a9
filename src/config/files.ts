/** Reading config files: YAML into plain objects, with errors that name the file. */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export { DEFAULT_CONFIG_FILE } from "./shipped.js";

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
