/**
 * Counts the OS threads the model worker creates while it generates, with `strace`: after a
 * warm-up request, strace attaches to every thread of the worker process and records each
 * clone/clone3 while one request generates `--tokens` tokens.
 *
 *   npx tsx scripts/bench/thread-creations.ts [--threads 2,4] [--tokens 300]
 *       [--backends auto,per-sequence] [--model <file.gguf>]
 *
 * Each (backend, threads) pair gets its own real server (startTestServer: the worker is a child
 * process of this one, as in production) with one sequence. Backend "auto" is the server's default
 * (the unified-KV local build, which attaches a persistent ggml thread pool to its context);
 * "per-sequence" is node-llama-cpp's prebuilt addon, which does not. The default model is the
 * looping scripted tiny model (test/helpers/models.ts), so every run generates exactly `--tokens`
 * tokens; the count of thread creations does not depend on the model's size.
 *
 * Needs `strace` (Debian: apt-get install strace) and ptrace rights over child processes.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { scriptedModel } from "../../test/helpers/models.js";
import { engineModel, startTestServer, type TestServer } from "../../test/helpers/server.js";

const { values } = parseArgs({
  options: {
    threads: { type: "string", default: "2,4" },
    tokens: { type: "string", default: "300" },
    backends: { type: "string", default: "auto,per-sequence" },
    model: { type: "string" },
  },
  strict: true,
});
const threadCounts = values.threads.split(",").map(Number);
const tokens = Number(values.tokens);
const backends = values.backends.split(",");
if (threadCounts.some((n) => !Number.isInteger(n) || n < 1) || !Number.isInteger(tokens) || tokens < 1) {
  console.error("thread-creations: --threads takes positive integers (2,4), --tokens a positive integer");
  process.exit(2);
}
if (spawnSync("strace", ["-V"], { stdio: "ignore" }).status !== 0) {
  console.error("thread-creations: needs strace (apt-get install strace)");
  process.exit(2);
}

const modelPath = values.model ?? (await scriptedModel(["The river ran past the old mill and on to the sea. "], { loop: true }));

async function complete(server: TestServer, maxTokens: number): Promise<number> {
  const res = await fetch(`${server.baseURL}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: "Tell me about the river." }], max_tokens: maxTokens, temperature: 0 }),
  });
  if (!res.ok) throw new Error(`completion failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { usage: { completion_tokens: number } };
  return body.usage.completion_tokens;
}

/** clone/clone3 calls in an strace -f log; a call interrupted by another thread's line shows up twice, once "unfinished" and once "resumed". */
function countClones(log: string): { threads: number; other: number } {
  let threads = 0;
  let other = 0;
  for (const line of log.split("\n")) {
    if (!/\bclone3?\(/.test(line) || line.includes("resumed>")) continue;
    if (line.includes("CLONE_THREAD")) threads++;
    else other++;
  }
  return { threads, other };
}

/** Starts strace on every thread of `pid`; resolves once it has attached to all of them. */
async function attachStrace(pid: number, outFile: string) {
  const tasks = readdirSync(`/proc/${pid}/task`).length;
  const strace = spawn("strace", ["-f", "-qq", "-e", "trace=clone,clone3", "-o", outFile, "-p", String(pid)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  strace.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => strace.once("exit", (code) => resolve(code)));
  // -qq hides the "attached" lines; give strace time to seize every thread (it stops each one).
  await sleep(500 + 20 * tasks);
  if (strace.exitCode !== null) throw new Error(`strace exited at once (${strace.exitCode}): ${stderr.trim()}`);
  return {
    tasks,
    async stop() {
      strace.kill("SIGINT");
      await exited;
    },
  };
}

for (const backend of backends) {
  for (const threads of threadCounts) {
    const server = await startTestServer(modelPath, {
      "model.threads": threads,
      "model.sequences": 1,
      "model.kvPool": backend,
    });
    const dir = mkdtempSync(join(tmpdir(), "edgellm-strace-"));
    try {
      const worker = server.running.registry.list()[0]!;
      const pid = worker.pid;
      if (pid === undefined) throw new Error("the worker has no process");
      await complete(server, 16); // warm-up: the first decodes, libuv's pool, lazy allocations
      const outFile = join(dir, "strace.log");
      const strace = await attachStrace(pid, outFile);
      const started = performance.now();
      const generated = await complete(server, tokens);
      const seconds = (performance.now() - started) / 1000;
      await strace.stop();
      const { threads: created, other } = countClones(readFileSync(outFile, "utf8"));
      const { kv_pool: kvPool } = await engineModel(server);
      console.log(
        `backend ${backend} (${kvPool} KV), threads ${threads}: ` +
        `${created} thread creations for ${generated} generated tokens ` +
        `(worker had ${strace.tasks} threads; ${other} other clones; ${(generated / seconds).toFixed(1)} tok/s under strace)`,
      );
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
