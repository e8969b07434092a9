import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { getLlama, readGgufFileInfo, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TRIGGER_TOKENS, WEIGHT_TYPES, synthesizeModel } from "../../src/models/synthetic/index.js";
import { tinyModel } from "../helpers/models.js";

const FILE_TYPE = { f16: 1, q4_0: 2, q8_0: 7 } as const;
const GGML_TYPE = { f16: 1, q4_0: 2, q8_0: 8 } as const;
const PROMPT = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false });
});
afterAll(() => llama?.dispose());

describe.each(WEIGHT_TYPES)("tiny preset, %s", (quant) => {
  let path: string;
  let model: LlamaModel;
  beforeAll(async () => {
    path = await tinyModel(quant);
    model = await llama.loadModel({ modelPath: path });
  });
  afterAll(() => model?.dispose());

  it("has the requested weight type, f32 norms and tied embeddings", async () => {
    const info = await readGgufFileInfo(path, { ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] });
    expect(info.metadata.general.architecture).toBe("qwen3");
    expect(info.metadata.general.file_type).toBe(FILE_TYPE[quant]);
    const types = new Map(info.tensorInfo!.map((t) => [t.name, t.ggmlType as number]));
    expect(types.get("token_embd.weight")).toBe(GGML_TYPE[quant]);
    expect(types.get("blk.1.ffn_down.weight")).toBe(GGML_TYPE[quant]);
    expect(types.get("blk.1.attn_q_norm.weight")).toBe(0);
    expect(types.has("output.weight")).toBe(false);
  });

  it("loads in node-llama-cpp and generates tokens", async () => {
    const context = await model.createContext({ contextSize: 256, threads: 2 });
    try {
      const generated: number[] = [];
      for await (const token of context.getSequence().evaluate(model.tokenize(PROMPT, true))) {
        generated.push(token);
        if (generated.length === 4) break;
      }
      expect(generated).toHaveLength(4);
      for (const token of generated) expect(token).toBeLessThan(151936);
    } finally {
      await context.dispose();
    }
  });
});

describe("Qwen3 tokenizer and chat template inside the GGUF", () => {
  let path: string;
  let model: LlamaModel;
  beforeAll(async () => {
    path = await tinyModel();
    model = await llama.loadModel({ modelPath: path });
  });
  afterAll(() => model?.dispose());

  it("renders the embedded chat template for thinking on and off", async () => {
    const info = await readGgufFileInfo(path, { readTensorInfo: false });
    const template = new Template(info.metadata.tokenizer.chat_template!);
    const messages = [{ role: "user", content: "hi" }];
    expect(template.render({ messages, add_generation_prompt: true })).toBe(PROMPT);
    expect(template.render({ messages, add_generation_prompt: true, enable_thinking: false })).toBe(
      `${PROMPT}<think>\n\n</think>\n\n`,
    );
  });

  it("ends rendered generation prompts with the default trigger tokens", () => {
    expect(model.tokenize(PROMPT, true).at(-1)).toBe(DEFAULT_TRIGGER_TOKENS[0]);
    expect(model.tokenize(`${PROMPT}<think>\n\n</think>\n\n`, true).at(-1)).toBe(DEFAULT_TRIGGER_TOKENS[1]);
  });

  it("tokenizes added tokens to single ids and uses <|im_end|> as EOS without BOS", () => {
    expect(model.tokenize("<think></think><tool_call></tool_call>", true)).toEqual([151667, 151668, 151657, 151658]);
    expect(model.tokens.eos).toBe(151645);
    expect(model.tokens.bos).toBe(151643);
    expect(model.tokenize("hi", true)).toEqual([6023]);
  });

  it("detokenizes user-defined added tokens always, control tokens only on request", () => {
    const thinkThenEos = [151667, 151645] as Token[];
    expect(model.detokenize(thinkThenEos, false)).toBe("<think>");
    expect(model.detokenize(thinkThenEos, true)).toBe("<think><|im_end|>");
  });
});

describe("reproducibility", () => {
  it("writes the same bytes for the same spec", async () => {
    const dir = await mkdtemp(join(tmpdir(), "synthetic-"));
    try {
      const again = await synthesizeModel({ kind: "preset", preset: "tiny", quant: "q4_0" }, join(dir, "tiny.gguf"));
      const sha = async (file: string): Promise<string> => createHash("sha256").update(await readFile(file)).digest("hex");
      expect(await sha(again.path)).toBe(await sha(await tinyModel("q4_0")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
