/**
 * A slot hands its request's sampling configuration to the addon's sampler once, unless the
 * configuration can change between tokens (penalties over the recent tokens, a grammar that
 * follows the output): node-llama-cpp resolves and passes it before every token otherwise. Given
 * once, the sampled tokens are the same as when it is given before every token, on a
 * random-weight model sampled at temperature 1, where any change to the sampler's chain or its
 * random state would show.
 */
import { describe, it, expect, beforeAll, afterAll, vi } from "vitest";
import { LlamaLogLevel, type LlamaContext, type LlamaModel, type SequenceEvaluateOptions, type Token } from "node-llama-cpp";
import { loadLlamaBackend, type LlamaBackend } from "../../src/engine/backend.js";
import { LlamaSlot } from "../../src/engine/llama-slot.js";
import { Request } from "../../src/engine/request.js";
import { RoundDecoder } from "../../src/engine/round-decoder.js";
import { tinyModel } from "../helpers/models.js";

const TOKENS = 16;
const SAMPLING = { temperature: 1, topK: 0, topP: 1, minP: 0, seed: 42 } satisfies SequenceEvaluateOptions;

let backend: LlamaBackend;
let model: LlamaModel;
let context: LlamaContext;
beforeAll(async () => {
  backend = await loadLlamaBackend("auto", { logLevel: LlamaLogLevel.warn, logger: () => {} });
  model = await backend.llama.loadModel({ modelPath: await tinyModel("q8_0") });
  context = await model.createContext({ sequences: 1, contextSize: 512, batchSize: 512, ...(backend.unifiedKv && { kvUnified: true }) });
});
afterAll(async () => {
  await context?.dispose();
  await model?.dispose();
  await backend?.llama.dispose();
});

let ids = 0;

/** Generates TOKENS tokens with `options` on a fresh slot; returns them and how often the sampler was configured. */
async function generate(options: SequenceEvaluateOptions): Promise<{ tokens: number[]; configured: number }> {
  const configure = vi.spyOn(RoundDecoder.of(context), "configure");
  const prompt = model.tokenize("The river ran past the old mill and on to the sea.");
  const request = new Request({ id: ++ids, prompt }, () => ({
    evaluateOptions: options,
    onAdmitted() {},
    onToken: () => false,
    onPreempted() {},
    onError() {},
    onReleased() {},
  }));
  const slot = new LlamaSlot(0, context.getSequence(), model);
  try {
    await slot.prepare(request, false);
    const tokens: number[] = [];
    while (tokens.length < TOKENS) {
      const outcome = await slot.step(slot.nextStepTokens());
      if ("token" in outcome) tokens.push(outcome.token);
    }
    await slot.release();
    return { tokens, configured: configure.mock.calls.length };
  } finally {
    configure.mockRestore();
    slot.sequence.dispose();
  }
}

describe("a slot's sampler configuration", () => {
  it("is given once when it cannot change between tokens, with the same tokens as when given before each", async () => {
    const once = await generate(SAMPLING);
    // A grammar-state function that never returns a grammar: the same configuration, read before every token.
    const everyToken = await generate({ ...SAMPLING, grammarEvaluationState: () => undefined });
    expect(once.configured).toBe(1);
    expect(everyToken.configured).toBe(TOKENS);
    expect(once.tokens).toEqual(everyToken.tokens);
    // The model samples: a stuck sampler would repeat one token.
    expect(new Set(once.tokens).size).toBeGreaterThan(3);
  });

  it("is given before every token with penalties over the recent tokens", async () => {
    const recent: Token[] = [];
    const penalized = await generate({ ...SAMPLING, repeatPenalty: { penalty: 1.3, punishTokens: () => recent } });
    expect(penalized.configured).toBe(TOKENS);
  });
});
