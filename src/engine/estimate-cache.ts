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
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
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
    dropStale(dir, file, key);
  } catch {
    // A read-only data directory: no cache, same answer.
  }
  return value;
}

/** Removes the entries of `file`'s earlier versions (same path, another size, mtime or inode) and those whose file is gone. */
function dropStale(dir: string, file: string, current: string): void {
  const { size, mtimeMs, ino } = JSON.parse(current) as { size: number; mtimeMs: number; ino: number };
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".json")) continue;
    let stored: { file: string; size: number; mtimeMs: number; ino: number };
    try {
      stored = JSON.parse((JSON.parse(readFileSync(join(dir, name), "utf8")) as { key: string }).key);
    } catch {
      continue;
    }
    const gone = (() => {
      try {
        statSync(stored.file);
        return false;
      } catch {
        return true;
      }
    })();
    const earlierVersion = stored.file === file && (stored.size !== size || stored.mtimeMs !== mtimeMs || stored.ino !== ino);
    if (gone || earlierVersion) rmSync(join(dir, name), { force: true });
  }
}
