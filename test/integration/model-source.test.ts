import { describe, it, expect } from "vitest";
import { mkdtemp, writeFile, copyFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { resolveModel, pullModel, ModelSourceError } from "../../src/models/resolve.js";
import { tinyModel } from "../helpers/models.js";

describe("model sources", () => {
  it("an hf: URI that cannot be fetched fails with one actionable line", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-pull-"));
    const err = await pullModel("hf:edgellm-tests/does-not-exist-GGUF:Q8_0", dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelSourceError);
    const msg = (err as Error).message;
    expect(msg).toContain("cannot fetch hf:edgellm-tests/does-not-exist-GGUF:Q8_0");
    expect(msg).toContain("--model <file.gguf>");
    expect(msg).not.toContain("\n");
    expect(await readdir(dir)).toEqual([]);
  });

  it("a local path resolves to its file with the file name as model id", async () => {
    const src = await tinyModel();
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-src-"));
    const file = path.join(dir, "My-Model.Q8_0.gguf");
    await copyFile(src, file);
    expect(await resolveModel(file, dir)).toEqual({ path: file, id: "My-Model.Q8_0", synthetic: false });
  });

  it("missing files and non-GGUF files are one-line errors naming the file", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-bad-"));
    await expect(resolveModel(path.join(dir, "nope.gguf"), dir)).rejects.toThrow(/nope\.gguf does not exist/);
    const junk = path.join(dir, "junk.gguf");
    await writeFile(junk, "this is not a model, just text long enough");
    await expect(resolveModel(junk, dir)).rejects.toThrow(/junk\.gguf is not a GGUF file/);
  });

  it("synthetic: URIs are generated once and get a readable id", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-syn-"));
    const a = await resolveModel("synthetic:tiny:q4_0", dir);
    expect(a.id).toBe("synthetic-tiny-q4_0");
    expect(a.synthetic).toBe(true);
    expect((await resolveModel("synthetic:tiny:q4_0", dir)).path).toBe(a.path);
    await expect(resolveModel("synthetic:huge", dir)).rejects.toBeInstanceOf(ModelSourceError);
  });
});
