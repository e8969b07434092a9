/**
 * The synthesized LoRA pair through node-llama-cpp itself: the same prompt gives the base
 * script without the adapter and the adapter's script with it, loaded at context creation or
 * switched on and off on a live context.
 */
import { getLlama, type Llama, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LORA_ADAPTER_REPLY, LORA_BASE_REPLY, scriptedLoraModel } from "../helpers/models.js";

const PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";

interface ContextInternals {
  _setLoras(loras: Array<{ filePath: string; scale?: number }>): Promise<void>;
}

let llama: Llama;
let model: LlamaModel;
let adapterPath: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false });
  const pair = await scriptedLoraModel();
  adapterPath = pair.adapter;
  model = await llama.loadModel({ modelPath: pair.model });
});
afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
});

async function reply(context: LlamaContext): Promise<string> {
  const sequence = context.getSequence();
  try {
    const tokens: Token[] = [];
    for await (const token of sequence.evaluate(model.tokenize(PROMPT, true), { yieldEogToken: true })) {
      if (token === model.tokens.eos || tokens.length === 100) break;
      tokens.push(token);
    }
    return model.detokenize(tokens, true);
  } finally {
    sequence.dispose();
  }
}

describe("a synthesized LoRA adapter", () => {
  it("changes the scripted model's reply, and only with the adapter", async () => {
    const plain = await model.createContext({ contextSize: 512, threads: 2 });
    const adapted = await model.createContext({ contextSize: 512, threads: 2, lora: { adapters: [{ filePath: adapterPath }] } });
    try {
      expect(await reply(plain)).toBe(LORA_BASE_REPLY);
      expect(await reply(adapted)).toBe(LORA_ADAPTER_REPLY);
      expect(await reply(plain)).toBe(LORA_BASE_REPLY);
    } finally {
      await adapted.dispose();
      await plain.dispose();
    }
  });

  it("is switched on and off on a live context", async () => {
    const context = await model.createContext({ contextSize: 512, threads: 2 });
    const internals = context as unknown as ContextInternals;
    try {
      expect(await reply(context)).toBe(LORA_BASE_REPLY);
      await internals._setLoras([{ filePath: adapterPath, scale: 1 }]);
      expect(await reply(context)).toBe(LORA_ADAPTER_REPLY);
      await internals._setLoras([]);
      expect(await reply(context)).toBe(LORA_BASE_REPLY);
    } finally {
      await context.dispose();
    }
  });

  it("is written as llama.cpp expects an adapter", async () => {
    const { readGgufFileInfo } = await import("node-llama-cpp");
    const info = await readGgufFileInfo(adapterPath);
    const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(meta.general).toMatchObject({ architecture: "qwen3", type: "adapter" });
    expect(meta.adapter).toMatchObject({ type: "lora" });
    const names = info.tensorInfo!.map((t) => t.name).sort();
    expect(names).toContain("output.weight.lora_a");
    expect(names).toContain("output.weight.lora_b");
    const a = info.tensorInfo!.find((t) => t.name === "output.weight.lora_a")!;
    const b = info.tensorInfo!.find((t) => t.name === "output.weight.lora_b")!;
    expect(Number(b.dimensions[1])).toBe(151936);
    expect(Number(a.dimensions[1])).toBe(Number(b.dimensions[0]));
    expect((meta.adapter as { lora: { alpha: number } }).lora.alpha).toBe(Number(a.dimensions[1]));
  });
});
