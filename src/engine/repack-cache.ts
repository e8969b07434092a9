/**
 * The repacked-weights cache (model.repackCache). On CPUs with repacked kernels (q4_0 on x86 with
 * AVX2, most quantized types on ARM), llama.cpp copies those weights out of the model file into
 * its kernels' layout at every load. The unified-KV addon's llama.cpp
 * (llama/patches/edgellm-repack-cache.diff) writes that buffer to a file in the directory named by
 * LLAMA_REPACK_CACHE_DIR once the model has loaded, and maps the file read-only on later loads of
 * the same model file by the same build on the same CPU.
 *
 * Each model file gets a directory of its own under `repack/` in the data directory, named by a
 * hash of its real path, with a `source` file holding that path: llama.cpp keeps one cache file
 * per directory, and a start drops the directories of model files that are gone.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import { dataDir } from "../config/data-dir.js";

/** The variable the patched llama.cpp reads at each model load. */
export const REPACK_CACHE_ENV = "LLAMA_REPACK_CACHE_DIR";

/** The cache's root: `repack/` in the server's data directory. */
export function repackCacheRoot(config: Pick<Config, "server" | "model">): string {
  return join(dataDir(config), "repack");
}

/**
 * `modelPath`'s cache directory under `root`, created, with its `source` file; the directories of
 * model files that no longer exist are removed. An error when the directory cannot be made (a
 * read-only data directory, a missing model file): the model then loads without the cache.
 */
export function prepareRepackCache(root: string, modelPath: string): { dir: string } | { error: string } {
  try {
    const source = realpathSync(modelPath);
    const made = join(root, createHash("sha256").update(source).digest("hex").slice(0, 16));
    mkdirSync(made, { recursive: true });
    // as /proc/self/maps will show the cache file's path
    const dir = realpathSync(made);
    writeFileSync(join(dir, "source"), source);
    dropGone(root);
    dropOrphanWrites(dir);
    return { dir };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function dropGone(root: string): void {
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(root, entry.name);
    let source: string | undefined;
    try {
      source = readFileSync(join(dir, "source"), "utf8");
    } catch {
      // made by a start that stopped before writing `source`, or not ours: left alone
    }
    if (source !== undefined && !existsSync(source)) rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes the partial cache files of writers that died (`<name>.repack.tmp<pid>`, killed while writing). */
function dropOrphanWrites(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = /\.repack\.tmp(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid))) rmSync(join(dir, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Points the next model load of this process at `dir`, or at no cache. */
export function useRepackCache(dir: string | undefined): void {
  if (dir === undefined) delete process.env[REPACK_CACHE_ENV];
  else process.env[REPACK_CACHE_ENV] = dir;
}

/** Whether this process maps a cache file of `dir`: the loaded weights came from it. */
export function repackCacheMapped(dir: string): boolean {
  try {
    return readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .some((line) => line.endsWith(".repack") && line.includes(`${dir}/`));
  } catch {
    return false;
  }
}
