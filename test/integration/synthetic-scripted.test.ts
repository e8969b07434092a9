import { getLlama, type Llama, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ScriptSegment } from "../../src/models/synthetic/index.js";
import { scriptedModel } from "../helpers/models.js";

const THINKING_PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
const NO_THINKING_PROMPT = `${THINKING_PROMPT}<think>\n\n</think>\n\n`;
/** Qwen3's recommended thinking-mode sampling. */
const SAMPLED = { temperature: 0.6, topK: 20, topP: 0.95 } as const;

interface Generation {
  /** Decoded with special tokens, EOS excluded. */
  readonly text: string;
  readonly tokens: readonly Token[];
  readonly endedWithEos: boolean;
}

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false });
});
afterAll(() => llama?.dispose());

async function generate(
  model: LlamaModel,
  context: LlamaContext,
  prompt: string,
  options: { temperature?: number; topK?: number; topP?: number; seed?: number } = {},
  maxTokens = 100,
): Promise<Generation> {
  const sequence = context.getSequence();
  try {
    const tokens: Token[] = [];
    for await (const token of sequence.evaluate(model.tokenize(prompt, true), { ...options, yieldEogToken: true })) {
      if (token === model.tokens.eos) return { text: model.detokenize(tokens, true), tokens, endedWithEos: true };
      tokens.push(token);
      if (tokens.length === maxTokens) break;
    }
    return { text: model.detokenize(tokens, true), tokens, endedWithEos: false };
  } finally {
    sequence.dispose();
  }
}

function describeScript(name: string, segments: ScriptSegment[], run: (m: () => [LlamaModel, LlamaContext]) => void): void {
  describe(name, () => {
    let model: LlamaModel;
    let context: LlamaContext;
    beforeAll(async () => {
      model = await llama.loadModel({ modelPath: await scriptedModel(segments) });
      context = await model.createContext({ contextSize: 2048, threads: 2 });
    });
    afterAll(async () => {
      await context?.dispose();
      await model?.dispose();
    });
    run(() => [model, context]);
  });
}

const THOUGHT = "\nThe user greets me. I should greet them back.\n";
const ANSWER = "Hello! How can I help you today?";
describeScript(
  "a thinking script",
  [{ token: "<think>" }, THOUGHT, { token: "</think>" }, `\n\n${ANSWER}`],
  (get) => {
    const expected = `<think>${THOUGHT}</think>\n\n${ANSWER}`;

    it("says exactly its script, greedily", async () => {
      const [model, context] = get();
      const out = await generate(model, context, THINKING_PROMPT);
      expect(out).toMatchObject({ text: expected, endedWithEos: true });
      expect(out.tokens[0]).toBe(151667);
      expect(out.tokens).toContain(151668);
    });

    it("says exactly its script with temperature 0.6 / top-k 20 / top-p 0.95", async () => {
      const [model, context] = get();
      for (const seed of [1, 2, 3]) {
        expect(await generate(model, context, THINKING_PROMPT, { ...SAMPLED, seed })).toMatchObject({
          text: expected,
          endedWithEos: true,
        });
      }
    });

    it("answers without thinking after a thinking-off prompt (it ends in the script's own </think>\\n\\n)", async () => {
      const [model, context] = get();
      expect(await generate(model, context, NO_THINKING_PROMPT)).toMatchObject({ text: ANSWER, endedWithEos: true });
    });

    it("follows the previous token even after a long prompt", async () => {
      const [model, context] = get();
      const long = `<|im_start|>user\n${"Tell me a long story about llamas. ".repeat(120)}<|im_end|>\n<|im_start|>assistant\n`;
      expect(model.tokenize(long, true).length).toBeGreaterThan(900);
      expect(await generate(model, context, long)).toMatchObject({ text: expected, endedWithEos: true });
    });

    it("ends at once when the prompt does not end in a trigger", async () => {
      const [model, context] = get();
      expect(await generate(model, context, "<|im_start|>user\nhi")).toMatchObject({ text: "", endedWithEos: true });
    });
  },
);

const TOOL_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
describeScript(
  "a tool-call script",
  [{ token: "<tool_call>" }, '\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n', { token: "</tool_call>" }],
  (get) => {
    it("emits the tool call with <tool_call>/</tool_call> as single tokens, greedy and sampled", async () => {
      const [model, context] = get();
      for (const options of [{}, { ...SAMPLED, seed: 7 }]) {
        for (const prompt of [THINKING_PROMPT, NO_THINKING_PROMPT]) {
          const out = await generate(model, context, prompt, options);
          expect(out).toMatchObject({ text: TOOL_CALL, endedWithEos: true });
          expect([out.tokens[0], out.tokens.at(-1)]).toEqual([151657, 151658]);
        }
      }
    });
  },
);

describe("a looping script", () => {
  it("never ends and repeats itself", async () => {
    const model = await llama.loadModel({ modelPath: await scriptedModel(["one two three. "], { loop: true }) });
    const context = await model.createContext({ contextSize: 256, threads: 2 });
    try {
      const out = await generate(model, context, THINKING_PROMPT, { ...SAMPLED, seed: 1 }, 40);
      expect(out.endedWithEos).toBe(false);
      expect(out.tokens).toHaveLength(40);
      expect("one two three. ".repeat(10).startsWith(out.text)).toBe(true);
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });
});

describe("scripted models in other weight types", () => {
  it.each(["f16", "q4_0"] as const)("%s says its script exactly", async (quant) => {
    const segments: ScriptSegment[] = [{ token: "<think>" }, "\nok\n", { token: "</think>" }, "\n\nDone."];
    const model = await llama.loadModel({ modelPath: await scriptedModel(segments, { quant }) });
    const context = await model.createContext({ contextSize: 256, threads: 2 });
    try {
      expect(await generate(model, context, THINKING_PROMPT, { ...SAMPLED, seed: 1 })).toMatchObject({
        text: "<think>\nok\n</think>\n\nDone.",
        endedWithEos: true,
      });
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });
});
