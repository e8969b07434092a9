/**
 * The node-llama-cpp patch (patches/) reads a model's vocabulary arrays for their lengths only
 * when it loads the model: `model.fileInfo` keeps every other key and the tensor list as a full
 * read has them, the arrays' lengths (which node-llama-cpp uses), and no token strings.
 */
import { getLlama, readGgufFileInfo, type Llama, type LlamaModel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/models.js";

const SKIPPED = ["tokens", "token_type", "merges"] as const;

let llama: Llama;
let model: LlamaModel;
let path: string;
beforeAll(async () => {
  llama = await getLlama({ gpu: false });
  path = await tinyModel("q8_0");
  model = await llama.loadModel({ modelPath: path });
});
afterAll(async () => {
  await model?.dispose();
  await llama?.dispose();
});

describe("a loaded model's GGUF metadata", () => {
  it("has the vocabulary arrays' lengths without their elements", async () => {
    const full = await readGgufFileInfo(path);
    const loaded = model.fileInfo.metadata.tokenizer.ggml as unknown as Record<string, unknown[]>;
    const read = full.metadata.tokenizer.ggml as unknown as Record<string, unknown[]>;
    for (const key of SKIPPED) {
      expect(read[key]!.length).toBeGreaterThan(150_000);
      expect(loaded[key]!.length).toBe(read[key]!.length);
      expect(Object.keys(loaded[key]!)).toEqual([]);
    }
    expect(read.tokens![0]).toBe("!");
    expect([...model.iterateAllTokens()].length).toBe(read.tokens!.length);
  });

  it("keeps every other key and the tensor list as a full read has them", async () => {
    const full = await readGgufFileInfo(path);
    const withoutVocabulary = (info: typeof full) => {
      const ggml = { ...(info.metadata.tokenizer.ggml as object) } as Record<string, unknown>;
      for (const key of SKIPPED) delete ggml[key];
      return { ...info.metadata, tokenizer: { ...info.metadata.tokenizer, ggml } };
    };
    expect(withoutVocabulary(model.fileInfo)).toEqual(withoutVocabulary(full));
    expect(model.fileInfo.tensorInfo).toEqual(full.tensorInfo);
    expect(model.fileInfo.metadataSize).toBe(full.metadataSize);
  });

  it("tokenizes with llama.cpp's vocabulary as before", () => {
    const tokens = model.tokenize("Hello, world!");
    expect(tokens.length).toBeGreaterThan(1);
    expect(model.detokenize(tokens)).toBe("Hello, world!");
  });
});
