/**
 * Graceful shutdown of the real CLI process: on SIGTERM / SIGINT health and new requests turn
 * 503, accepted requests finish (up to server.shutdownGraceMs), then the worker stops and the
 * process exits 0.
 */
import { describe, it, expect, beforeAll } from "vitest";
import { scriptedModel } from "../helpers/models.js";
import { spawnCli, waitHealthy, type CliProcess } from "../helpers/cli.js";
import { openStream, untilContent, waitFor } from "../helpers/stream.js";

const ask = (extra: Record<string, unknown>) => ({ model: "m", messages: [{ role: "user", content: "count" }], stream: true, ...extra });

let modelPath: string;
beforeAll(async () => {
  modelPath = await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true });
});

async function startCli(graceMs: number, detached = false, ctxSize = 1024): Promise<{ cli: CliProcess; url: string }> {
  const cli = spawnCli(
    ["--model", modelPath, "--alias", "m", "--port", "0", "--ctx-size", String(ctxSize), "--parallel", "2", "--threads", "2", "--set", `server.shutdownGraceMs=${graceMs}`],
    { detached },
  );
  const url = await cli.url;
  await waitHealthy(url);
  return { cli, url };
}

async function expectShuttingDown(url: string) {
  const health = await fetch(`${url}/health`);
  expect(health.status).toBe(503);
  expect(((await health.json()) as any).error.code).toBe("shutting_down");
  const chat = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: JSON.stringify(ask({ stream: false })) });
  expect(chat.status).toBe(503);
  expect(await chat.json()).toEqual({ error: { message: "The server is shutting down", type: "service_unavailable_error", param: null, code: "shutting_down" } });
}

describe("graceful shutdown of the CLI", () => {
  it("SIGTERM: refuses new work, lets the in-flight stream finish, exits 0", async () => {
    const { cli, url } = await startCli(30_000);
    // Long enough (about a second here) to be still running when the 503s are checked: a stream
    // that ended first lets the server exit under the check.
    const stream = await openStream(`${url}/v1/chat/completions`, ask({ max_tokens: 400 }));
    await untilContent(stream);
    cli.child.kill("SIGTERM");
    // The signal has been handled once /health turns 503 (no fixed sleep).
    await waitFor(async () => (await fetch(`${url}/health`)).status, (s) => s === 503, 10_000, 10);
    await expectShuttingDown(url);
    const rest = await stream.rest();
    expect(rest.at(-1)).toBe("[DONE]");
    expect(JSON.parse(rest.at(-2)!).choices[0].finish_reason).toBe("length");
    expect(await cli.exit).toEqual({ code: 0, signal: null });
  });

  it("the grace period bounds the wait: an endless stream is cut with a shutting_down error, exit 0", async () => {
    // Up to the scripted model's whole context (4,096 tokens): on a fast 2-core machine 1,000
    // tokens took about a second, and the stream sometimes ended inside the grace period.
    const { cli, url } = await startCli(1000, false, 4096);
    const stream = await openStream(`${url}/v1/chat/completions`, ask({ max_tokens: 4000 }));
    await untilContent(stream);
    const signalled = Date.now();
    cli.child.kill("SIGTERM");
    const rest = await stream.rest();
    expect(JSON.parse(rest.at(-1)!)).toMatchObject({ error: { code: "shutting_down", type: "service_unavailable_error" } });
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(10_000);
  });

  it("Ctrl+C (SIGINT to the whole process group) drains too: the worker does not die with the group", async () => {
    const { cli, url } = await startCli(30_000, true);
    const stream = await openStream(`${url}/v1/chat/completions`, ask({ max_tokens: 30 }));
    await untilContent(stream);
    process.kill(-cli.child.pid!, "SIGINT");
    const rest = await stream.rest();
    expect(rest.at(-1)).toBe("[DONE]");
    expect(await cli.exit).toEqual({ code: 0, signal: null });
  });
});

describe("stopping the worker in the middle of a round", () => {
  // Before the engine waited for the round in flight, about one stop in eight freed the context
  // under a running decode and the worker hung until the server's 10 s kill timer.
  it("the worker exits on its own, every time, right after the grace period", async () => {
    for (let i = 0; i < 8; i++) {
      const { cli, url } = await startCli(200);
      const stream = await openStream(`${url}/v1/chat/completions`, ask({ max_tokens: 1000 }));
      await untilContent(stream);
      const signalled = Date.now();
      cli.child.kill("SIGTERM");
      await stream.rest();
      expect(await cli.exit).toEqual({ code: 0, signal: null });
      expect(cli.stdout()).not.toContain("did not exit");
      expect(Date.now() - signalled).toBeLessThan(5_000);
    }
  }, 120_000);
});
