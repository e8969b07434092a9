/**
 * config/default.yaml, and the two of its keys the CLI needs before anything else loads: the
 * model worker's launch (`model.workerHeapMB`, `model.hugePages`), read from the text instead of
 * through the YAML parser, whose modules took 45 to 60 ms of a start here before the worker's
 * fork. The full loader (load.ts) reads the file again; a worker forked with other settings than
 * the loaded configuration's is replaced (router/worker-process.ts), so a misread costs time,
 * never the settings. test/unit/config-shipped.test.ts checks the two reads agree.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../../config/default.yaml", import.meta.url));

/**
 * `  workerHeapMB: <integer>` and `  hugePages: true|false` in the top-level `model:` block of
 * `text` (the shipped file's own layout: two-space indentation, `#` comments); undefined when
 * either is missing or written otherwise.
 */
export function shippedWorkerSettings(text: string): { workerHeapMB: number; hugePages: boolean } | undefined {
  const block = /^model:[ \t]*(?:#.*)?\n((?:(?:[ \t#].*)?\n)*)/m.exec(text)?.[1] ?? "";
  const value = (key: string) => new RegExp(`^  ${key}:[ \\t]*([^\\s#]+)[ \\t]*(?:#.*)?$`, "m").exec(block)?.[1];
  const heap = value("workerHeapMB");
  const huge = value("hugePages");
  if (heap === undefined || !/^\d+$/.test(heap) || (huge !== "true" && huge !== "false")) return undefined;
  return { workerHeapMB: Number(heap), hugePages: huge === "true" };
}

/** shippedWorkerSettings of config/default.yaml; undefined when it cannot be read (the loader then says why). */
export function readShippedWorkerSettings(): ReturnType<typeof shippedWorkerSettings> {
  try {
    return shippedWorkerSettings(readFileSync(DEFAULT_CONFIG_FILE, "utf8"));
  } catch {
    return undefined;
  }
}
