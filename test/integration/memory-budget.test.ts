/**
 * The memory estimate behind model.memoryBudgetMB, on a synthesized Qwen3-0.6B (the real
 * architecture and vocabulary, our weights): the edge-1gb profile fits its own budget, a q8_0
 * KV cache is estimated below f16, and an impossible budget is refused with the numbers.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { getLlama, readGgufFileInfo, type Llama } from "node-llama-cpp";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presetModel, tinyModel } from "../helpers/models.js";
import { loadConfig } from "../../src/config/load.js";
import { checkMemoryBudget, estimateMemory, MemoryBudgetError, modelHeader } from "../../src/engine/memory-budget.js";
import { REPO_ROOT } from "../helpers/cli.js";

const MiB = 2 ** 20;

describe("memory budget estimate", () => {
  let llama: Llama;
  let model: string;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never" });
    model = await presetModel("qwen3-0.6b", "q4_0");
  });
  afterAll(() => llama?.dispose());

  it("the edge-1gb profile fits its budget, which fits 1 GiB", async () => {
    const profile = loadConfig({ file: `${REPO_ROOT}/config/edge-1gb.yaml` }, {}).model;
    const e = await estimateMemory(llama, model, profile, true);
    expect(e.weightsBytes).toBeGreaterThan(250 * MiB);
    expect(e.weightsBytes + e.contextBytes).toBeLessThan(profile.memoryBudgetMB * MiB);
    await expect(checkMemoryBudget(llama, model, profile, true)).resolves.toEqual(e);
  });

  it("prices a q8_0 KV cache below f16 (the simulated estimate, not the old formula)", async () => {
    const base = loadConfig({ set: { "model.contextSize": 4096, "model.sequences": 4 } }, {}).model;
    const f16 = await estimateMemory(llama, model, { ...base, kvCacheType: "f16" }, false);
    const q8 = await estimateMemory(llama, model, { ...base, kvCacheType: "q8_0" }, false);
    expect(q8.contextBytes).toBeLessThan(f16.contextBytes);
    // Qwen3-0.6B: 28 layers x 8 KV heads x 128 x (K+V) x 2 bytes = 112 KiB per token at f16.
    expect(f16.contextBytes).toBeGreaterThan(4096 * 4 * 112 * 1024);
  });

  it("the default pool (kvPoolTokens 0): contextSize cells shared in a unified pool, contextSize per sequence otherwise", async () => {
    const defaults = loadConfig({}, {}).model;
    expect(defaults.kvPoolTokens).toBe(0);
    const unified = await estimateMemory(llama, model, defaults, true);
    const perSequence = await estimateMemory(llama, model, defaults, false);
    expect(unified.contextTokens).toBe(defaults.contextSize);
    expect(perSequence.contextTokens).toBe(defaults.contextSize * defaults.sequences);
    // Qwen3-0.6B f16 KV: 112 KiB per cell, so 4096 cells are 448 MiB (16384 were 1.75 GiB).
    expect(unified.contextBytes).toBeGreaterThan(defaults.contextSize * 112 * 1024);
    expect(unified.contextBytes).toBeLessThan(perSequence.contextBytes / 2);
  });

  it("refuses a budget it cannot fit, with the numbers and what to change", async () => {
    const small = loadConfig({ set: { "model.memoryBudgetMB": 300, "model.contextSize": 2048, "model.sequences": 2 } }, {}).model;
    const err = await checkMemoryBudget(llama, model, small, false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemoryBudgetError);
    expect((err as Error).message).toMatch(
      /^the model needs about \d+ MiB \(weights \d+ MiB, KV cache and compute buffers \d+ MiB for 4096 KV cells with f16 KV\) but model.memoryBudgetMB is 300 MiB; lower model.kvPoolTokens, model.contextSize or model.sequences/,
    );
  });

  it("keeps the model's header with the estimates, and loadModel takes it instead of reading the file again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgellm-header-"));
    try {
      const read = await readGgufFileInfo(model, { logWarnings: false, lengthOnlyKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores"] });
      const first = await modelHeader(model, dir);
      const [entry] = readdirSync(dir);
      expect(readdirSync(dir)).toHaveLength(1);
      // The vocabulary stays a 151k-long array of holes, not 151k stored nulls.
      expect(readFileSync(join(dir, entry!), "utf8").length).toBeLessThan(200_000);
      const second = await modelHeader(model, dir);
      for (const header of [first, second]) {
        expect(JSON.stringify(header)).toBe(JSON.stringify(read));
        expect(header.metadata.tokenizer.ggml.tokens).toHaveLength(read.metadata.tokenizer.ggml.tokens.length);
        expect(0 in header.metadata.tokenizer.ggml.tokens).toBe(false);
      }

      // A later start reads the stored copy: an edit to it shows.
      const stored = JSON.parse(readFileSync(join(dir, entry!), "utf8")) as { value: { metadata: { general: { name?: string } } } };
      stored.value.metadata.general.name = "from the stored header";
      writeFileSync(join(dir, entry!), JSON.stringify(stored));
      expect((await modelHeader(model, dir)).metadata.general.name).toBe("from the stored header");

      const tiny = await tinyModel();
      const header = await modelHeader(tiny, dir);
      const loaded = await llama.loadModel({ modelPath: tiny, _edgellmFileInfo: header });
      try {
        expect(loaded.fileInfo).toBe(header);
      } finally {
        await loaded.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
