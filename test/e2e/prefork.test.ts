/**
 * The CLI forks the model worker before it loads its configuration and the server's modules
 * (src/router/worker-process.ts), with the shipped default heap limit and huge pages. The server
 * takes that worker when the model's settings match and forks its own otherwise; either way one
 * worker serves.
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
    const tunables = workers.map((w) => readFileSync(`/proc/${w.pid}/environ`, "utf8").split("\0").find((v) => v.startsWith("GLIBC_TUNABLES=")));
    const hugeKiB = workers.map((w) => Number(/^AnonHugePages:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${w.pid}/smaps_rollup`, "utf8"))![1]));
    return { content, started, workers, heapFlags, tunables, hugeKiB };
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

  it("asks for transparent huge pages (model.hugePages), and a worker without them replaces it when they are off", async () => {
    const on = await serve([]);
    expect(on.started).toEqual([expect.objectContaining({ preforked: true })]);
    expect(on.tunables).toEqual(["GLIBC_TUNABLES=glibc.malloc.hugetlb=1"]);
    const off = await serve(["--set", "model.hugePages=false"]);
    expect(off.content).toBe("Hello.");
    expect(off.started).toEqual([expect.objectContaining({ preforked: false })]);
    expect(off.workers.map((w) => w.pid)).toEqual([off.started[0]!.pid]);
    expect(off.tunables).toEqual([process.env.GLIBC_TUNABLES === undefined ? undefined : `GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}`]);
    // What the kernel did with the request depends on its THP mode: "madvise" (most
    // distributions, and this machine) gives huge pages to exactly the processes that ask.
    const mode = /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))![1];
    if (mode === "madvise") {
      expect(on.hugeKiB[0]).toBeGreaterThan(0);
      expect(off.hugeKiB).toEqual([0]);
    } else if (mode === "never") {
      expect([...on.hugeKiB, ...off.hugeKiB]).toEqual([0, 0]);
    } else {
      expect(on.hugeKiB[0]).toBeGreaterThan(0);
    }
  });

  it("is replaced by a worker with the configured heap limit, and does not stay behind", async () => {
    const { content, started, workers, heapFlags } = await serve(["--set", "model.workerHeapMB=300"]);
    expect(content).toBe("Hello.");
    expect(started).toEqual([expect.objectContaining({ preforked: false })]);
    expect(workers.map((w) => w.pid)).toEqual([started[0]!.pid]);
    expect(heapFlags).toEqual([["--max-old-space-size=300"]]);
  });
});
