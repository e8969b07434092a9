/**
 * The CLI forks the model worker before it loads its configuration and the server's modules
 * (src/router/worker-process.ts), with the shipped default heap limit. The server takes that
 * worker when the model's settings match and forks its own otherwise; either way one worker serves.
 */
import { readFileSync } from "node:fs";
import { describe, it, expect, beforeAll } from "vitest";
import { scriptedModel } from "../helpers/models.js";
import { processTree, spawnCli, waitHealthy } from "../helpers/cli.js";

let modelPath: string;
beforeAll(async () => {
  modelPath = await scriptedModel(["Hello."]);
});

const ARGS = ["--alias", "m", "--port", "0", "--host", "127.0.0.1", "--ctx-size", "512", "--parallel", "1", "--threads", "1", "--log-level", "debug"];

async function serve(extra: string[]) {
  const cli = spawnCli(["--model", modelPath, ...ARGS, ...extra]);
  try {
    const url = await cli.url;
    await waitHealthy(url);
    const reply = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) });
    const content = ((await reply.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const started = cli
      .stdout()
      .split("\n")
      .filter((l) => l.includes('"worker process started"'))
      .map((l) => JSON.parse(l) as { pid: number; preforked: boolean });
    const workers = processTree(cli.child.pid!).filter((p) => p.line.includes("worker/main"));
    const heapFlags = workers.map((w) => readFileSync(`/proc/${w.pid}/cmdline`, "utf8").split("\0").filter((a) => a.startsWith("--max-old-space-size")));
    return { content, started, workers, heapFlags };
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exit;
  }
}

describe("the worker forked at start", () => {
  it("is the one that serves when the settings are the shipped defaults", async () => {
    const { content, started, workers, heapFlags } = await serve([]);
    expect(content).toBe("Hello.");
    expect(started).toEqual([expect.objectContaining({ preforked: true })]);
    expect(workers.map((w) => w.pid)).toEqual([started[0]!.pid]);
    expect(heapFlags).toEqual([["--max-old-space-size=256"]]);
  });

  it("is replaced by a worker with the configured heap limit, and does not stay behind", async () => {
    const { content, started, workers, heapFlags } = await serve(["--set", "model.workerHeapMB=300"]);
    expect(content).toBe("Hello.");
    expect(started).toEqual([expect.objectContaining({ preforked: false })]);
    expect(workers.map((w) => w.pid)).toEqual([started[0]!.pid]);
    expect(heapFlags).toEqual([["--max-old-space-size=300"]]);
  });
});
