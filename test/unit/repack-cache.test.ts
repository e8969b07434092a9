/** The repacked-weights cache's directories (repack-cache.ts); llama.cpp's side is test/e2e/repack-cache.test.ts. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareRepackCache, REPACK_CACHE_ENV, repackCacheMapped, useRepackCache } from "../../src/engine/repack-cache.js";

let base: string;
let root: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "edgellm-repack-unit-"));
  root = join(base, "repack");
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

function modelFile(name: string): string {
  const file = join(base, name);
  writeFileSync(file, "GGUF");
  return file;
}

describe("prepareRepackCache", () => {
  it("gives each model file a directory of its own, named by its path, holding that path", () => {
    const a = prepareRepackCache(root, modelFile("a.gguf"));
    const b = prepareRepackCache(root, modelFile("b.gguf"));
    if (!("dir" in a) || !("dir" in b)) throw new Error("no directory");
    expect(a.dir).not.toBe(b.dir);
    expect(readFileSync(join(a.dir, "source"), "utf8")).toBe(join(base, "a.gguf"));
    expect(prepareRepackCache(root, join(base, "a.gguf"))).toEqual(a);
  });

  it("removes the directories of model files that are gone, and keeps directories it did not make", () => {
    const gone = prepareRepackCache(root, modelFile("gone.gguf"));
    if (!("dir" in gone)) throw new Error("no directory");
    writeFileSync(join(gone.dir, "0123456789abcdef.repack"), "x");
    mkdirSync(join(root, "foreign"));
    rmSync(join(base, "gone.gguf"));
    prepareRepackCache(root, modelFile("kept.gguf"));
    expect(existsSync(gone.dir)).toBe(false);
    expect(readdirSync(root)).toContain("foreign");
  });

  it("removes the partial files of writers that died, not those of a live one", () => {
    const model = modelFile("m.gguf");
    const first = prepareRepackCache(root, model);
    if (!("dir" in first)) throw new Error("no directory");
    // a pid above the kernel's pid_max is never a live process
    writeFileSync(join(first.dir, `0123456789abcdef.repack.tmp${2 ** 22 + 1}`), "x");
    writeFileSync(join(first.dir, `0123456789abcdef.repack.tmp${process.pid}`), "x");
    prepareRepackCache(root, model);
    expect(readdirSync(first.dir).sort()).toEqual([`0123456789abcdef.repack.tmp${process.pid}`, "source"]);
  });

  it("says why when it cannot make the directory", () => {
    const missing = prepareRepackCache(root, join(base, "missing.gguf"));
    expect(missing).toEqual({ error: expect.stringContaining("ENOENT") });
    writeFileSync(join(base, "file"), "");
    expect(prepareRepackCache(join(base, "file", "repack"), modelFile("m.gguf"))).toEqual({ error: expect.stringContaining("ENOTDIR") });
  });
});

describe("useRepackCache", () => {
  afterEach(() => useRepackCache(undefined));

  it("sets and clears the variable llama.cpp reads at each load", () => {
    useRepackCache("/some/dir");
    expect(process.env[REPACK_CACHE_ENV]).toBe("/some/dir");
    useRepackCache(undefined);
    expect(process.env[REPACK_CACHE_ENV]).toBeUndefined();
  });
});

describe("repackCacheMapped", () => {
  it("is false for a directory this process maps nothing from", () => {
    expect(repackCacheMapped(base)).toBe(false);
  });
});
