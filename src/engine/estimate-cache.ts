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
 *
 * Writing an entry drops the ones no start can read again: those of the same path whose file has
 * changed since (a re-pulled or re-synthesized model), and those whose file is gone. Entries for
 * the same unchanged file with other settings stay.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
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

/** The model file an entry was computed for, as its key records it. */
interface FileVersion {
  file: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** `compute`'s answer for `modelPath` and `settings`, from `dir` when it holds it, else computed and stored there. */
export async function cachedEstimate<T>(dir: string | undefined, modelPath: string, settings: Record<string, unknown>, compute: () => Promise<T>): Promise<T> {
  if (!dir) return compute();
  const file = resolve(modelPath);
  let version: FileVersion;
  try {
    const { size, mtimeMs, ino } = statSync(file);
    version = { file, size, mtimeMs, ino };
  } catch {
    // A missing file: the estimate's own error says so.
    return compute();
  }
  const key = JSON.stringify({ ...version, settings, nodeLlamaCpp: NLC_VERSION });
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
    dropStale(dir, version);
  } catch {
    // A read-only data directory: no cache, same answer.
  }
  return value;
}

/** Removes the entries of `current.file`'s earlier versions (same path, another size, mtime or inode) and those whose file is gone. */
function dropStale(dir: string, current: FileVersion): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    let stored: FileVersion;
    try {
      stored = JSON.parse((JSON.parse(readFileSync(join(dir, name), "utf8")) as { key: string }).key);
    } catch {
      continue;
    }
    const earlierVersion = stored.file === current.file && (stored.size !== current.size || stored.mtimeMs !== current.mtimeMs || stored.ino !== current.ino);
    if (earlierVersion || !existsSync(stored.file)) rmSync(join(dir, name), { force: true });
  }
}
