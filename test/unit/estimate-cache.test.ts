/**
 * The memory estimate kept on disk across starts: computed once per file and settings, computed
 * again when the file or a setting changes, never in the way (a corrupt entry or an unwritable
 * directory means computing it), and not kept for files that changed or are gone.
 */
import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedEstimate, estimateCacheDir } from "../../src/engine/estimate-cache.js";

describe("cachedEstimate", () => {
  let root: string;
  let dir: string;
  let model: string;
  let computed: number;
  const compute = async () => ({ bytes: ++computed });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "edgellm-estimates-"));
    dir = join(root, "estimates");
    model = join(root, "m.gguf");
    writeFileSync(model, "GGUF-ish");
    computed = 0;
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("computes once per file and settings, then reads the answer back", async () => {
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 1 });
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 1 });
    expect(computed).toBe(1);
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it("other settings, or a changed file (mtime, size), compute again", async () => {
    await cachedEstimate(dir, model, { contextSize: 4096 }, compute);
    expect(await cachedEstimate(dir, model, { contextSize: 8192 }, compute)).toEqual({ bytes: 2 });
    utimesSync(model, new Date(), new Date(Date.now() + 5000));
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 3 });
    writeFileSync(model, "GGUF-ish, longer");
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 4 });
  });

  it("a new entry drops those of the file's earlier versions and of files that are gone", async () => {
    const other = join(root, "other.gguf");
    const gone = join(root, "gone.gguf");
    writeFileSync(other, "another model");
    writeFileSync(gone, "a deleted model");
    await cachedEstimate(dir, model, { contextSize: 4096 }, compute);
    await cachedEstimate(dir, model, { contextSize: 8192 }, compute);
    await cachedEstimate(dir, other, {}, compute);
    await cachedEstimate(dir, gone, {}, compute);
    expect(readdirSync(dir)).toHaveLength(4);
    rmSync(gone);

    writeFileSync(model, "GGUF-ish, re-pulled");
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 5 });
    // Left: the new version's entry and the other file's; both read back without computing.
    expect(readdirSync(dir)).toHaveLength(2);
    expect(await cachedEstimate(dir, model, { contextSize: 4096 }, compute)).toEqual({ bytes: 5 });
    expect(await cachedEstimate(dir, other, {}, compute)).toEqual({ bytes: 3 });
    expect(computed).toBe(5);
  });

  it("a corrupt entry is computed again and replaced", async () => {
    await cachedEstimate(dir, model, {}, compute);
    const [entry] = readdirSync(dir);
    writeFileSync(join(dir, entry!), "{not json");
    expect(await cachedEstimate(dir, model, {}, compute)).toEqual({ bytes: 2 });
    expect(await cachedEstimate(dir, model, {}, compute)).toEqual({ bytes: 2 });
  });

  it("no directory, or one it cannot create: computed every time, same answer", async () => {
    expect(await cachedEstimate(undefined, model, {}, compute)).toEqual({ bytes: 1 });
    expect(await cachedEstimate(undefined, model, {}, compute)).toEqual({ bytes: 2 });
    // Under a regular file: mkdir fails (ENOTDIR) whoever runs the test.
    expect(await cachedEstimate(join(model, "estimates"), model, {}, compute)).toEqual({ bytes: 3 });
    expect(await cachedEstimate(join(model, "estimates"), model, {}, compute)).toEqual({ bytes: 4 });
  });

  it("lives in estimates/ of the data directory", () => {
    expect(estimateCacheDir({ server: { dataDir: "/srv/data" }, model: { dir: "models" } } as never)).toBe("/srv/data/estimates");
  });
});
