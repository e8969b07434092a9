/**
 * The memory estimate of an embedding model prices what the engine creates for it: one
 * single-sequence embedding context of model.contextSize, and no chat sequences. llama.cpp
 * computes logits for every token of a micro-batch there, so the micro-batch sets the cost.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { getLlama, type Llama } from "node-llama-cpp";
import { embeddingModel, tinyModel } from "../helpers/models.js";
import { loadConfig } from "../../src/config/load.js";
import { estimateMemory } from "../../src/engine/memory-budget.js";

describe("memory estimate of an embedding model", () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never" });
  });
  afterAll(() => llama?.dispose());

  it("counts one context of contextSize cells; last pooling's micro-batch is model.batchSize, mean's the whole context", async () => {
    const config = loadConfig({ set: { "model.contextSize": 2048, "model.sequences": 8, "model.batchSize": 256 } }, {}).model;
    const last = await estimateMemory(llama, await embeddingModel("last"), config, false);
    const mean = await estimateMemory(llama, await embeddingModel("mean"), config, false);
    const chat = await estimateMemory(llama, await tinyModel(), config, false);
    expect(last.contextTokens).toBe(2048);
    expect(mean.contextTokens).toBe(2048);
    expect(chat.contextTokens).toBe(2048 * 8);
    expect(last.weightsBytes).toBe(chat.weightsBytes);
    // Logits of 2048 tokens x 151,936 floats: over 1 GiB for mean; 256 tokens' worth for last.
    expect(mean.contextBytes).toBeGreaterThan(2048 * 151_936 * 4);
    expect(last.contextBytes).toBeLessThan(mean.contextBytes / 4);
  });
});
