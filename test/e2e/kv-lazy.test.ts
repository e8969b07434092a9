/**
 * The KV pool is not touched before it is used: the addon's llama.cpp takes a CPU KV buffer from
 * calloc instead of clearing it (node-llama-cpp patch, llama/patches/edgellm-lazy-kv-clear.diff),
 * so a worker's resident memory after start-up and a short request holds a fraction of the pool,
 * and cells no sequence has written read as zeros, as a cleared pool's do.
 */
import { readFileSync } from "node:fs";
import { describe, it, expect } from "vitest";
import { QWEN3_PRESETS } from "../../src/models/synthetic/index.js";
import { presetModel, scriptedModel } from "../helpers/models.js";
import { processTree, spawnCli, waitHealthy } from "../helpers/cli.js";

/** A server on `modelPath` with a pool of `cells` cells; `use` gets its URL and its worker's pid. */
async function withServer(modelPath: string, cells: number, use: (url: string, workerPid: number) => Promise<void>): Promise<void> {
  const args = ["--model", modelPath, "--alias", "m", "--port", "0", "--host", "127.0.0.1", "--ctx-size", "1024", "--parallel", "2", "--threads", "1"];
  const cli = spawnCli([...args, "--set", `model.kvPoolTokens=${cells}`]);
  try {
    const url = await cli.url;
    await waitHealthy(url);
    const [worker] = processTree(cli.child.pid!).filter((p) => p.line.includes("worker/main"));
    await use(url, worker!.pid);
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exit;
  }
}

async function ask(url: string, maxTokens: number): Promise<string> {
  const reply = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], temperature: 0, max_tokens: maxTokens }),
  });
  return ((await reply.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
}

describe("the KV pool", () => {
  it("is resident only where sequences wrote it", async () => {
    // Qwen3-0.6B's shape: 112 KiB of KV a cell, so the pool outweighs all else the worker holds.
    const model = await presetModel("qwen3-0.6b", "q4_0");
    const cells = 16_384;
    // K and V, f16 (model.kvCacheType's default), every layer.
    const { blockCount, headCountKv, headDim } = QWEN3_PRESETS["qwen3-0.6b"];
    const poolKiB = (cells * blockCount * headCountKv * 2 * headDim * 2) / 1024;
    await withServer(model, cells, async (url, pid) => {
      expect((await ask(url, 8)).length).toBeGreaterThan(0);
      const rssAnonKiB = Number(/^RssAnon:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
      // Cleared, the pool alone (1.75 GiB) would be resident.
      expect(rssAnonKiB).toBeLessThan(poolKiB / 2);
    });
  });

  it("reads as zeros where no sequence wrote it: two sequences beside untouched cells give the scripted reply", async () => {
    const script = "Lazy pages stay out of memory until a sequence writes them.";
    const model = await scriptedModel([script]);
    // Attention also reads, masked, the cells up to the next multiple of 256 past the highest in
    // use: cells of this pool's calloc'd, never-written pages.
    await withServer(model, 65_536, async (url) => {
      expect(await Promise.all([ask(url, 64), ask(url, 64)])).toEqual([script, script]);
    });
  });
});
