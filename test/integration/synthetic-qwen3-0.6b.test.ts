import { getLlama, readGgufFileInfo, type GgufFileInfo, type Llama } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { presetModel } from "../helpers/models.js";

const Q4_0 = 2;
const F32 = 0;

describe("qwen3-0.6b preset (q4_0)", () => {
  let llama: Llama;
  let path: string;
  let info: GgufFileInfo;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false });
    path = await presetModel("qwen3-0.6b", "q4_0"); // ~7 s on first run, cached afterwards
    info = await readGgufFileInfo(path, { ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges"] });
  }, 180_000);
  afterAll(() => llama?.dispose());

  it("has Qwen3-0.6B's hyperparameters", () => {
    expect(info.metadata.general.architecture).toBe("qwen3");
    expect(info.architectureMetadata).toMatchObject({
      block_count: 28,
      context_length: 40960,
      embedding_length: 1024,
      feed_forward_length: 3072,
      attention: { head_count: 16, head_count_kv: 8, key_length: 128, value_length: 128 },
      rope: { freq_base: 1_000_000 },
    });
    expect(info.architectureMetadata.attention?.layer_norm_rms_epsilon).toBeCloseTo(1e-6, 12);
    expect(info.metadata.general.file_type).toBe(Q4_0);
  });

  it("has Qwen3-0.6B's tensors: tied embeddings, q/k norms, GQA projections", () => {
    const tensors = new Map(info.tensorInfo!.map((t) => [t.name, { dims: t.dimensions.map(Number), type: t.ggmlType as number }]));
    expect(tensors.size).toBe(1 + 28 * 11 + 1);
    expect(tensors.has("output.weight")).toBe(false);
    expect(tensors.get("token_embd.weight")).toEqual({ dims: [1024, 151936], type: Q4_0 });
    expect(tensors.get("output_norm.weight")).toEqual({ dims: [1024], type: F32 });
    expect(tensors.get("blk.27.attn_q.weight")).toEqual({ dims: [1024, 2048], type: Q4_0 });
    expect(tensors.get("blk.27.attn_k.weight")).toEqual({ dims: [1024, 1024], type: Q4_0 });
    expect(tensors.get("blk.27.attn_v.weight")).toEqual({ dims: [1024, 1024], type: Q4_0 });
    expect(tensors.get("blk.27.attn_output.weight")).toEqual({ dims: [2048, 1024], type: Q4_0 });
    expect(tensors.get("blk.27.attn_q_norm.weight")).toEqual({ dims: [128], type: F32 });
    expect(tensors.get("blk.27.ffn_gate.weight")).toEqual({ dims: [1024, 3072], type: Q4_0 });
    expect(tensors.get("blk.27.ffn_down.weight")).toEqual({ dims: [3072, 1024], type: Q4_0 });
  });

  it("loads in node-llama-cpp and generates a few tokens", async () => {
    const model = await llama.loadModel({ modelPath: path });
    const context = await model.createContext({ contextSize: 256, threads: 2 });
    try {
      const prompt = model.tokenize("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", true);
      const generated: number[] = [];
      for await (const token of context.getSequence().evaluate(prompt, { temperature: 0.6, topK: 20, topP: 0.95, seed: 1 })) {
        generated.push(token);
        if (generated.length === 3) break;
      }
      expect(generated).toHaveLength(3);
    } finally {
      await context.dispose();
      await model.dispose();
    }
  }, 60_000);
});
