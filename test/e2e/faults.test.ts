/**
 * Faults against the real server and worker: a worker killed mid-stream, restart with
 * backoff, and model files that cannot be served (missing, not GGUF, truncated, a broken
 * vocabulary, too big for the memory budget) failing with one line and a non-zero exit.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { Writable } from "node:stream";
import { scriptedModel, tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openStream, untilContent, waitFor } from "../helpers/stream.js";
import { spawnCli } from "../helpers/cli.js";
import { ModelWorker } from "../../src/router/model-worker.js";
import { loadConfig } from "../../src/config/load.js";
import { unifiedKvExpected } from "../../src/engine/backend.js";
import { gguf, writeGguf, type GgufArray, type GgufValue } from "../../src/models/synthetic/gguf-writer.js";
import { randomQwen3Model } from "../../src/models/synthetic/qwen3.js";

const LOOP = ["one two three four five six seven eight nine ten "];
const getJson = async (url: string): Promise<any> => (await fetch(url)).json();
const ask = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: "user", content: "count" }], ...extra });

describe("a worker killed mid-stream", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(LOOP, { loop: true }), { "model.sequences": 2 });
  });
  afterAll(() => server?.stop());

  it("runs the worker with the configured V8 heap limit (model.workerHeapMB), restarts included", async () => {
    const worker = server.running.registry.list()[0]!;
    const args = readFileSync(`/proc/${worker.pid}/cmdline`, "utf8").split("\0");
    expect(args).toContain("--max-old-space-size=256");
  });

  it("ends in-flight requests cleanly, reports degraded, restarts, and serves again", async () => {
    const worker = server.running.registry.list()[0]!;
    const chat = `${server.baseURL}/chat/completions`;
    const firstPid = worker.pid!;
    expect((await getJson(`${server.url}/v1/engine`)).models[0].state).toBe("ready");

    const stream = await openStream(chat, ask(server.modelId, { stream: true, max_tokens: 900 }));
    expect(stream.status).toBe(200);
    await untilContent(stream);
    // A second request still waiting for its answer has sent no header yet: it gets a plain 503.
    const pending = fetch(chat, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ask(server.modelId, { max_tokens: 900 })) });
    await waitFor(async () => (await getJson(`${server.url}/v1/engine`)).models[0].inflight, (n: number) => n === 2);

    process.kill(firstPid, "SIGKILL");

    const rest = await stream.rest();
    expect(rest.at(-1)).not.toBe("[DONE]");
    const error = JSON.parse(rest.at(-1)!);
    expect(error).toEqual({ error: { message: expect.stringContaining("stopped unexpectedly"), type: "service_unavailable_error", param: null, code: "worker_unavailable" } });

    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(((await res.json()) as any).error.code).toBe("worker_unavailable");

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "degraded", error: { code: "worker_restarting" } });
    const meanwhile = await fetch(chat, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ask(server.modelId)) });
    expect(meanwhile.status).toBe(503);
    expect(((await meanwhile.json()) as any).error.code).toBe("worker_restarting");

    await waitFor(async () => (await fetch(`${server.url}/health`)).status, (s) => s === 200, 60_000, 100);
    expect(worker.restarts).toBe(1);
    expect(worker.pid).not.toBe(firstPid);
    expect(readFileSync(`/proc/${worker.pid}/cmdline`, "utf8").split("\0")).toContain("--max-old-space-size=256");
    const after = await fetch(chat, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ask(server.modelId, { max_tokens: 5 })) });
    expect(after.status).toBe(200);
    expect(((await after.json()) as any).usage.completion_tokens).toBe(5);
    const again = await openStream(chat, ask(server.modelId, { stream: true, max_tokens: 5 }));
    expect((await again.rest()).at(-1)).toBe("[DONE]");
  });
});

/** A log sink that records the delay of every "restarting worker" line the supervisor logs. */
function restartDelaySink() {
  const delays: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString());
      if (line.msg === "restarting worker") delays.push(line.delayMs);
      done();
    },
  });
  return { delays, sink };
}

describe("restart backoff", () => {
  it("doubles the delay while the worker keeps dying, up to the cap, and forgets it after a stable run", async () => {
    const modelPath = await tinyModel();
    const config = loadConfig({ set: { "model.contextSize": 256, "model.sequences": 1, "model.threads": 1 } }, {});
    const { delays, sink } = restartDelaySink();
    const options = { backoffMs: { initial: 100, max: 250 }, stableAfterMs: 60_000 };
    const worker = new ModelWorker(
      "tiny",
      { modelPath, modelId: "tiny", model: config.model, generation: config.generation, limits: config.limits },
      pino({ level: "info" }, sink),
      options,
    );
    try {
      await worker.start();
      const killAndWait = async () => {
        const pid = worker.pid!;
        process.kill(pid, "SIGKILL");
        await waitFor(async () => worker.state === "ready" && worker.pid !== pid, (ok) => ok, 60_000);
      };
      await killAndWait();
      await killAndWait();
      await killAndWait();
      options.stableAfterMs = 0;
      await killAndWait();
      expect(delays).toEqual([100, 200, 250, 100]);
      expect(worker.restarts).toBe(4);
    } finally {
      await worker.stop();
    }
  });
});

describe("a restart that cannot load", () => {
  it("is retried after the next delay, with one worker process at a time, until the model loads again", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "edgellm-restart-"));
    const file = path.join(dir, "m.gguf");
    copyFileSync(await tinyModel(), file);
    const good = readFileSync(file);
    const config = loadConfig({ set: { "model.contextSize": 256, "model.sequences": 1, "model.threads": 1 } }, {});
    const { delays, sink } = restartDelaySink();
    const worker = new ModelWorker(
      "m",
      { modelPath: file, modelId: "m", model: config.model, generation: config.generation, limits: config.limits },
      pino({ level: "info" }, sink),
      { backoffMs: { initial: 300, max: 10_000 } },
    );
    try {
      await worker.start();
      truncateSync(file, 4096);
      process.kill(worker.pid!, "SIGKILL");
      await waitFor(async () => delays.length, (n) => n >= 2, 60_000);
      expect(worker.state).toBe("restarting");
      writeFileSync(file, good);
      await waitFor(async () => worker.state, (s) => s === "ready", 60_000);
      expect(delays.slice(0, 2)).toEqual([300, 600]);
      const children = execFileSync("ps", ["-o", "args=", "--ppid", String(process.pid)], { encoding: "utf8" });
      expect(children.split("\n").filter((l) => l.includes("worker/main")).length).toBe(1);
    } finally {
      await worker.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("model files that cannot be served: one line naming the file, exit 1", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "edgellm-files-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function runCli(args: string[]) {
    const cli = spawnCli([...args, "--port", "0"]);
    const { code } = await cli.exit;
    const lines = cli.stderr().trim().split("\n");
    return { code, lines };
  }

  it("a missing file", async () => {
    const file = path.join(dir, "missing.gguf");
    const { code, lines } = await runCli(["--model", file]);
    expect(code).toBe(1);
    expect(lines).toEqual([`edgellm: model file ${file} does not exist`]);
  });

  it("a file that is not GGUF", async () => {
    const file = path.join(dir, "notes.gguf");
    writeFileSync(file, "this is a text file, not a model\n".repeat(10));
    const { code, lines } = await runCli(["--model", file]);
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^edgellm: model file ${file} is not a GGUF file`));
  });

  it("a truncated GGUF (passes the magic check, fails in llama.cpp)", async () => {
    const file = path.join(dir, "truncated.gguf");
    copyFileSync(await tinyModel(), file);
    truncateSync(file, Math.floor(statSync(file).size * 0.6));
    const { code, lines } = await runCli(["--model", file]);
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`edgellm: cannot load model ${file}: `);
    expect(lines[0]).toMatch(/corrupted or incomplete|not within the file bounds/);
  });

  // The unified-KV addon's llama.cpp loads the vocabulary on a second thread while the tensors
  // load (llama/patches/edgellm-async-vocab-load.diff): its failure comes from that thread, after
  // the tensors, and must stop the load the same way.
  it("a GGUF whose vocabulary is broken (fewer token types than tokens)", async () => {
    const file = path.join(dir, "broken-vocabulary.gguf");
    const model = randomQwen3Model("tiny", "q8_0", 1);
    const first1000 = (types: GgufValue) => gguf.numbers("i32", Array.from((types as GgufArray).values as ArrayLike<number>).slice(0, 1000));
    const metadata = model.metadata.map(([key, value]) => [key, key === "tokenizer.ggml.token_type" ? first1000(value) : value] as const);
    await writeGguf(file, { metadata, tensors: model.tensors });
    const { code, lines } = await runCli(["--model", file]);
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`edgellm: cannot load model ${file}: `);
    expect(lines[0]).toContain("error loading model vocabulary: Index out of array bounds for toktypes (1000 < 151936)");
  });

  it("a model over the memory budget is refused with the numbers", async () => {
    const file = await tinyModel();
    const { code, lines } = await runCli(["--model", file, "--set", "model.memoryBudgetMB=8"]);
    // The default pool: contextSize (4096) cells when unified, 4096 per sequence (4) otherwise.
    const cells = (await unifiedKvExpected("auto")) ? 4096 : 16384;
    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^edgellm: cannot load model ${file}: the model needs about \\d+ MiB \\(weights \\d+ MiB, KV cache and compute buffers \\d+ MiB for ${cells} KV cells with f16 KV\\) but model.memoryBudgetMB is 8 MiB`),
    );
  });
});
