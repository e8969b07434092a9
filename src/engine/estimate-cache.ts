/**
 * The memory estimate kept on disk. node-llama-cpp's estimate simulates llama.cpp's allocation:
 * it parses the GGUF in JavaScript and loads the model natively without weights (its vocabulary
 * included), which `loadModel` then does again. A restart on the same file with the same
 * settings reads the answer back instead.
 *
 * One JSON file per key under `dir`, named by the key's hash. The key is everything the estimate
 * depends on: the file (path, size, mtime, inode), the settings it reads, the KV pool mode, the
 * addon build and node-llama-cpp's version. The cache is an optimization only: an unreadable,
 * corrupt or unwritable entry means the estimate is computed as if there were none.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import type { Config } from "../config/schema.js";
import { dataDir } from "../config/data-dir.js";

/** The cache's directory: `estimates/` in the server's data directory. */
export function estimateCacheDir(config: Pick<Config, "server" | "model">): string {
  return join(dataDir(config), "estimates");
}

/** node-llama-cpp's version: a new release may estimate differently. */
const NLC_VERSION = (() => {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve("node-llama-cpp/package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
})();

/** `compute`'s answer for `modelPath` and `settings`, from `dir` when it holds it, else computed and stored there. */
export async function cachedEstimate<T>(dir: string | undefined, modelPath: string, settings: Record<string, unknown>, compute: () => Promise<T>): Promise<T> {
  if (!dir) return compute();
  const file = resolve(modelPath);
  let key: string;
  try {
    const { size, mtimeMs, ino } = statSync(file);
    key = JSON.stringify({ file, size, mtimeMs, ino, settings, nodeLlamaCpp: NLC_VERSION });
  } catch {
    // A missing file: the estimate's own error says so.
    return compute();
  }
  const entry = join(dir, `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`);
  try {
    const stored = JSON.parse(readFileSync(entry, "utf8")) as { key: string; value: T };
    if (stored.key === key) return stored.value;
  } catch {
    // no entry yet, or an unreadable one
  }
  const value = await compute();
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${entry}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ key, value }));
    renameSync(tmp, entry);
  } catch {
    // A read-only data directory: no cache, same answer.
  }
  return value;
}
