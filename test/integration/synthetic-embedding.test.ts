/** Synthesized embedding models: a chat preset's weights with `qwen3.pooling_type` declared. */
import { open, stat } from "node:fs/promises";
import { readGgufFileInfo } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { syntheticModelFileName } from "../../src/models/synthetic/index.js";
import { embeddingModel, tinyModel } from "../helpers/models.js";

const IGNORE = { ignoreKeys: ["tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type"] };

async function tail(path: string, bytes: number): Promise<Buffer> {
  const { size } = await stat(path);
  const file = await open(path, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    await file.read(buffer, 0, bytes, size - bytes);
    return buffer;
  } finally {
    await file.close();
  }
}

describe("embedding models", () => {
  it("declare the pooling as llama.cpp's enum (mean 1, cls 2, last 3); chat presets declare none", async () => {
    for (const [pooling, id] of [["mean", 1], ["cls", 2], ["last", 3]] as const) {
      const info = await readGgufFileInfo(await embeddingModel(pooling), IGNORE);
      expect((info.metadata as any).qwen3.pooling_type).toBe(id);
      expect(info.metadata.general.name).toBe("synthetic-tiny-embedding");
    }
    const chat = await readGgufFileInfo(await tinyModel(), IGNORE);
    expect((chat.metadata as any).qwen3.pooling_type).toBeUndefined();
  });

  it("carry exactly the weights of the chat preset with the same seed", async () => {
    const [embedding, chat] = [await embeddingModel("last"), await tinyModel()];
    const [a, b] = [await readGgufFileInfo(embedding, IGNORE), await readGgufFileInfo(chat, IGNORE)];
    const shape = (info: typeof a) => info.tensorInfo!.map((t) => [t.name, t.dimensions, t.ggmlType, t.offset]);
    expect(shape(a)).toEqual(shape(b));
    // The tensor data is the end of the file: 8 MiB of the ~10 MiB token embedding and what follows.
    expect((await tail(embedding, 8 << 20)).equals(await tail(chat, 8 << 20))).toBe(true);
  });

  it("leave the cached chat presets' file names as they were", () => {
    expect(syntheticModelFileName({ kind: "preset", preset: "tiny" })).toBe("synthetic-tiny-q8_0-b74295a46c00a023.gguf");
    expect(syntheticModelFileName({ kind: "preset", preset: "tiny", pooling: "last" })).toMatch(/^synthetic-tiny-embedding-last-q8_0-[0-9a-f]{16}\.gguf$/);
  });
});
