/**
 * Builds the one validated Config: defaults < --config file < EDGELLM_* env < CLI flags.
 * Every failure names the offending key and where it came from.
 */
import { Kind, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { ConfigSchema, type Config } from "./schema.js";
import { ConfigError, DEFAULT_CONFIG_FILE, isObject, readYaml, type Json } from "./files.js";

export { ConfigError };

function deepMerge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isObject(prev) && isObject(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

/** Leaf keys of the schema as dotted paths, e.g. "model.contextSize", with their schemas. */
function leaves(schema: TSchema, prefix = ""): Array<[string, TSchema]> {
  if (schema[Kind] === "Object") {
    return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([k, s]) =>
      leaves(s, prefix ? `${prefix}.${k}` : k),
    );
  }
  return [[prefix, schema]];
}

const LEAVES = new Map(leaves(ConfigSchema));

const envName = (path: string) =>
  "EDGELLM_" + path.split(".").map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("_");

/** Turns a string from env or `--set` into the leaf's type. */
function coerce(path: string, raw: string, origin: string): unknown {
  const schema = LEAVES.get(path);
  if (!schema) throw new ConfigError(`unknown config key '${path}' (from ${origin})`);
  const kinds = schema[Kind] === "Union" ? (schema.anyOf as TSchema[]).map((s) => s[Kind]) : [schema[Kind]];
  // Lists come as comma-separated strings: EDGELLM_SERVER_API_KEYS=key1,key2.
  if (kinds.includes("Array")) return raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
  if (kinds.includes("Boolean") && (raw === "true" || raw === "false")) return raw === "true";
  if ((kinds.includes("Integer") || kinds.includes("Number")) && raw.trim() !== "" && !Number.isNaN(Number(raw))) {
    return Number(raw);
  }
  return raw;
}

function setPath(obj: Json, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as Json;
  }
  cur[parts[parts.length - 1]!] = value;
}

/**
 * One API key, whole (no comma splitting), under the single-key name users try first after
 * llama-server's LLAMA_API_KEY; it joins EDGELLM_SERVER_API_KEYS when both are set.
 */
export const SINGLE_API_KEY_ENV = "EDGELLM_API_KEY";

function fromEnv(env: NodeJS.ProcessEnv): Json {
  const byName = new Map([...LEAVES.keys()].map((p) => [envName(p), p]));
  const out: Json = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("EDGELLM_") || raw === undefined || name === SINGLE_API_KEY_ENV) continue;
    const path = byName.get(name);
    if (!path) throw new ConfigError(`unknown environment variable ${name}; known: ${[SINGLE_API_KEY_ENV, ...byName.keys()].join(", ")}`);
    setPath(out, path, coerce(path, raw, name));
  }
  const single = env[SINGLE_API_KEY_ENV]?.trim();
  if (single) {
    const server = (out.server ?? {}) as Json;
    setPath(out, "server.apiKeys", [...((server.apiKeys as string[] | undefined) ?? []), single]);
  }
  return out;
}

export interface ConfigOverrides {
  /** Extra config file (--config). */
  file?: string;
  /** Dotted-path overrides from CLI flags, raw strings or typed values. */
  set?: Record<string, unknown>;
}

export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  let merged = readYaml(DEFAULT_CONFIG_FILE);
  if (overrides.file) merged = deepMerge(merged, readYaml(overrides.file));
  merged = deepMerge(merged, fromEnv(env));
  const flags: Json = {};
  for (const [path, value] of Object.entries(overrides.set ?? {})) {
    setPath(flags, path, typeof value === "string" ? coerce(path, value, `--set ${path}`) : value);
  }
  merged = deepMerge(merged, flags);
  return validate(merged);
}

/** Keys whose values must never appear in an error message or log line. */
const SECRET_KEYS = ["server.apiKeys"];

export function validate(candidate: unknown): Config {
  const first = Value.Errors(ConfigSchema, candidate).First();
  if (first) {
    const key = first.path.replace(/^\//, "").replaceAll("/", ".") || "(root)";
    const unknownKey = first.message.toLowerCase().includes("unexpected property");
    const shown = SECRET_KEYS.some((k) => key.startsWith(k)) ? "[redacted]" : JSON.stringify(first.value);
    throw new ConfigError(unknownKey ? `unknown config key '${key}'` : `invalid config value for '${key}': ${first.message} (got ${shown})`);
  }
  return candidate as Config;
}

export { envName };
