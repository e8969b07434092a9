/**
 * The RoundDecoder holds node-llama-cpp's dispose guard for each round, as node-llama-cpp's own
 * decodes do: disposing the context while a round is in the addon waits for that round, and a
 * round submitted once disposal has begun fails with an error instead of reaching freed memory.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { loadLlamaBackend, type LlamaBackend } from "../../src/engine/backend.js";
import { RoundDecoder } from "../../src/engine/round-decoder.js";
import { tinyModel } from "../helpers/models.js";

let backend: LlamaBackend;
let model: LlamaModel;
beforeAll(async () => {
  backend = await loadLlamaBackend("auto", { logLevel: LlamaLogLevel.warn, logger: () => {} });
  model = await backend.llama.loadModel({ modelPath: await tinyModel("q8_0") });
});
afterAll(async () => {
  await model?.dispose();
  await backend?.llama.dispose();
});

describe("a context disposed around decode rounds", () => {
  it("waits for the round in flight, then refuses the next one", async () => {
    const context = await model.createContext({ sequences: 1, contextSize: 512, batchSize: 512, ...(backend.unifiedKv && { kvUnified: true }) });
    const sequence = context.getSequence();
    const decoder = RoundDecoder.of(context);
    const sampler = decoder.newSampler();
    decoder.configure(sampler, sequence, {});
    const prompt = model.tokenize("one two three four five six seven eight nine ten ".repeat(20)).slice(0, 200);
    const order: string[] = [];

    const round = decoder.submit(sequence, prompt, { sampler, logprobs: undefined }).then((r) => {
      order.push("round");
      return r;
    });
    // The round is flushed in a microtask; dispose once it is in the addon.
    await Promise.resolve();
    await Promise.resolve();
    const disposed = context.dispose().then(() => order.push("disposed"));
    const sampled = await round;
    await disposed;
    expect(order).toEqual(["round", "disposed"]);
    expect(sampled.token).toBeGreaterThanOrEqual(0);

    await expect(decoder.submit(sequence, [sampled.token as Token], { sampler, logprobs: undefined })).rejects.toThrow(/dispose/i);
    sampler.dispose();
  });
});
