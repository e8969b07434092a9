import { execFileSync, spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { listArg, numberArg } from "../../scripts/lib/args.js";
import { cpuPressure, groupMembers, processTree, statusBytes, threadTicks, treeRss } from "../../scripts/lib/proc.js";
import { deltaText, sseEvents } from "../../scripts/lib/sse.js";

async function* bytes(...pieces: string[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) yield new TextEncoder().encode(piece);
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const event of sseEvents(body)) out.push(event.data);
  return out;
}

describe("scripts/lib/sse", () => {
  it("yields each event's data across chunk boundaries, skipping comments and names", async () => {
    const stream = bytes(
      ': heartbeat\n\ndata: {"a":',
      '1}\n\nevent: ping\ndata: {"b":2}\r\n\r\n',
      "id: 7\ndata: line one\ndata: line two\n\n",
      "data: [DONE]\n\n",
    );
    expect(await collect(stream)).toEqual(['{"a":1}', '{"b":2}', "line one\nline two", "[DONE]"]);
  });

  it("keeps a multi-byte character split between chunks, and a last event without its blank line", async () => {
    const euro = new TextEncoder().encode("data: €\n\ndata: end\n");
    async function* split() {
      yield euro.slice(0, 7);
      yield euro.slice(7);
    }
    expect(await collect(split())).toEqual(["€", "end"]);
  });

  it("stamps an event with the arrival of the bytes that completed it", async () => {
    const times: number[] = [];
    async function* slow() {
      yield new TextEncoder().encode("data: x");
      await new Promise((r) => setTimeout(r, 30));
      yield new TextEncoder().encode("\n\n");
    }
    const before = performance.now();
    for await (const event of sseEvents(slow())) times.push(event.at - before);
    expect(times).toHaveLength(1);
    expect(times[0]).toBeGreaterThanOrEqual(25);
  });

  it("reads a chunk's text, answer and reasoning alike", () => {
    expect(deltaText({ choices: [{ delta: { content: "a", reasoning_content: "b" } }] })).toBe("ab");
    expect(deltaText({ choices: [{ delta: { content: null } }] })).toBe("");
    expect(deltaText({ usage: { completion_tokens: 3 } })).toBe("");
  });
});

describe("scripts/lib/args", () => {
  it("checks numbers against their bounds, one line naming the option", () => {
    expect(numberArg("n", "12")).toBe(12);
    expect(numberArg("rate", "0.5", { min: 0.01, integer: false })).toBe(0.5);
    expect(() => numberArg("n", "1.5")).toThrow("--n must be an integer >= 0, got '1.5'");
    expect(() => numberArg("n", "0", { min: 1, max: 10 })).toThrow("--n must be an integer in [1, 10], got '0'");
    expect(() => numberArg("n", "")).toThrow(/--n must be/);
    expect(() => numberArg("n", undefined)).toThrow(/got 'undefined'/);
    expect(() => numberArg("n", true)).toThrow(/--n must be/);
  });

  it("checks list items against the allowed ones", () => {
    expect(listArg("servers", "edgellm, llama-server", ["edgellm", "llama-server"] as const)).toEqual(["edgellm", "llama-server"]);
    expect(() => listArg("servers", "edgellm,vllm", ["edgellm", "llama-server"] as const)).toThrow('--servers: unknown "vllm"; expected one of edgellm, llama-server');
  });
});

describe("scripts/lib/proc on this machine", () => {
  it("finds a child in our process tree and in its own process group, with its memory", async () => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"], { detached: true, stdio: "ignore" });
    try {
      await new Promise((resolve) => child.once("spawn", resolve));
      expect(processTree(process.pid)).toContain(child.pid);
      expect(statusBytes(process.pid, "VmRSS")).toBeGreaterThan(10 * 2 ** 20);
      expect(statusBytes(process.pid, "VmHWM")).toBeGreaterThan(10 * 2 ** 20);
      const rss = treeRss(process.pid);
      expect(rss.server).toBeGreaterThan(0);
      expect(rss.worker).toBeGreaterThan(0);
      expect(groupMembers(child.pid!)).toEqual([{ pid: child.pid, command: `${process.execPath} -e setTimeout(() => {}, 20000)` }]);
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((resolve) => child.once("exit", resolve));
    expect(groupMembers(child.pid!)).toEqual([]);
    expect(statusBytes(child.pid!, "VmRSS")).toBe(0);
  });

  it("reads each thread's CPU time, the busy thread's on its own", async () => {
    // The child's main thread uses 300 ms of CPU, says so and idles; its other threads are Node's helpers.
    const spin = "while (process.cpuUsage().user < 300_000); console.log('spun'); setTimeout(() => {}, 20000)";
    const child = spawn(process.execPath, ["-e", spin], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      await new Promise((resolve) => child.stdout.once("data", resolve));
      const ticks = threadTicks(child.pid!);
      expect(ticks.size).toBeGreaterThan(1);
      const tickMs = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));
      const main = ticks.get(child.pid!)!;
      // The 300 ms of user time are the whole process's: Node's helper threads take a few of them.
      expect(main * tickMs).toBeGreaterThanOrEqual(250);
      for (const [tid, t] of ticks) if (tid !== child.pid) expect(t).toBeLessThan(main);
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((resolve) => child.once("exit", resolve));
    expect(threadTicks(child.pid!).size).toBe(0);
  });

  it("reads CPU pressure where the kernel has PSI", () => {
    const psi = cpuPressure();
    if (psi === undefined) return;
    expect(psi.avg10).toBeGreaterThanOrEqual(0);
    expect(psi.avg60).toBeGreaterThanOrEqual(0);
  });
});
