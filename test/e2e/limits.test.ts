/**
 * The `limits.*` section against the real server: each violation is an OpenAI error naming the
 * parameter (400), or 429 for too many concurrent requests from one client; the deadline ends
 * a request that runs too long and frees its sequence.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { connect } from "node:net";
import { scriptedModel } from "../helpers/models.js";
import { engineIdle, startTestServer, type TestServer } from "../helpers/server.js";
import { openStream, untilContent, waitFor } from "../helpers/stream.js";

const LOOP = ["one two three four five six seven eight nine ten "];

async function post(server: TestServer, body: unknown): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(`${server.baseURL}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe("request limits", () => {
  let server: TestServer;
  let ok: { model: string; messages: Array<{ role: string; content: string }> };
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(LOOP, { loop: true }), {
      "limits.maxMessages": 4,
      "limits.maxPromptTokens": 200,
      "limits.maxCompletionTokens": 1000,
      "limits.maxN": 2,
      "limits.maxStopStrings": 2,
      "limits.maxStopLength": 8,
      "limits.maxTools": 1,
      "limits.maxToolSchemaBytes": 200,
      "limits.maxJsonDepth": 12,
      "limits.maxConcurrentRequestsPerClient": 2,
    });
    ok = { model: server.modelId, messages: [{ role: "user", content: "count" }] };
  });
  afterAll(() => server?.stop());

  const tool = (parameters: Record<string, unknown> = { type: "object" }) => ({ type: "function", function: { name: "f", parameters } });

  it.each([
    ["messages", () => ({ messages: Array.from({ length: 5 }, () => ({ role: "user", content: "x" })) }), "limits.maxMessages"],
    ["max_tokens", () => ({ max_tokens: 1001 }), "limits.maxCompletionTokens"],
    ["max_completion_tokens", () => ({ max_completion_tokens: 5000 }), "limits.maxCompletionTokens"],
    ["n", () => ({ n: 3 }), "limits.maxN"],
    ["stop", () => ({ stop: ["a", "b", "c"] }), "limits.maxStopStrings"],
    ["stop[1]", () => ({ stop: ["a", "much too long"] }), "limits.maxStopLength"],
    ["stop", () => ({ stop: "much too long" }), "limits.maxStopLength"],
    ["tools", () => ({ tools: [tool(), tool()] }), "limits.maxTools"],
    ["tools[0].function.parameters", () => ({ tools: [tool({ type: "object", description: "d".repeat(300) })] }), "limits.maxToolSchemaBytes"],
    ["body", () => ({ chat_template_kwargs: JSON.parse("{\"a\":".repeat(20) + "1" + "}".repeat(20)) }), "limits.maxJsonDepth"],
  ])("%s over its limit is a 400 naming it", async (param, extra, key) => {
    const res = await post(server, { ...ok, ...extra() });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { message: expect.stringContaining(key), type: "invalid_request_error", param, code: "limit_exceeded" } });
  });

  it("JSON nested 100k deep is refused without hurting the server", async () => {
    const res = await post(server, "[".repeat(100_000) + "]".repeat(100_000));
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe("body");
    expect((await post(server, { ...ok, max_tokens: 2 })).status).toBe(200);
  });

  it("headers over Node's 16 KiB and garbage request lines get OpenAI error objects, and the server goes on", async () => {
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(server.url).port), "127.0.0.1", () => socket.write(request));
        let data = "";
        socket.on("data", (chunk) => (data += chunk.toString()));
        socket.on("close", () => resolve(data));
        socket.on("error", reject);
      });
    const parse = (response: string) => ({
      status: Number(/^HTTP\/1\.1 (\d+)/.exec(response)?.[1]),
      body: JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4)),
    });
    const big = parse(await raw(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`));
    expect(big).toEqual({ status: 431, body: { error: { message: expect.stringContaining("headers"), type: "invalid_request_error", param: null, code: "headers_too_large" } } });
    const garbage = parse(await raw("NOT HTTP AT ALL\r\n\r\n"));
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.code).toBe("bad_http_request");
    expect((await post(server, { ...ok, max_tokens: 2 })).status).toBe(200);
  });

  it("values at the limits pass", async () => {
    const res = await post(server, { ...ok, max_tokens: 2, n: 2, stop: ["zzzzzzzz", "y"], tools: [tool()] });
    expect(res.status).toBe(200);
    expect(res.body.choices).toHaveLength(2);
  });

  it("prompt tokens are counted after the chat template", async () => {
    const res = await post(server, { ...ok, messages: [{ role: "user", content: "count to ten and then again ".repeat(40) }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ param: "messages", code: "limit_exceeded", message: expect.stringMatching(/The prompt has \d+ tokens; this server accepts at most 200 \(limits.maxPromptTokens\)/) });
  });

  it("a third concurrent request from one client is a 429 until one of its two ends", async () => {
    const a = await openStream(`${server.baseURL}/chat/completions`, { ...ok, stream: true, max_tokens: 900 });
    const b = await openStream(`${server.baseURL}/chat/completions`, { ...ok, stream: true, max_tokens: 900 });
    await Promise.all([untilContent(a), untilContent(b)]);
    const third = await post(server, { ...ok, max_tokens: 1 });
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(third.body).toEqual({
      error: { message: expect.stringContaining("limits.maxConcurrentRequestsPerClient"), type: "rate_limit_error", param: null, code: "too_many_concurrent_requests" },
    });
    a.abort();
    await waitFor(() => post(server, { ...ok, max_tokens: 1 }), (r) => r.status === 200, 10_000);
    b.abort();
    await engineIdle(server);
  });
});

describe("request deadline", () => {
  let server: TestServer;
  let ok: { model: string; messages: Array<{ role: string; content: string }> };
  beforeAll(async () => {
    // Room for a generation that outlasts the deadline however fast the machine decodes (about
    // 1 ms a token for this model at 1 thread: 900 tokens once finished inside 1.5 s).
    server = await startTestServer(await scriptedModel(LOOP, { loop: true }), { "limits.requestTimeoutMs": 1500, "model.contextSize": 8192 });
    ok = { model: server.modelId, messages: [{ role: "user", content: "count" }] };
  });
  afterAll(() => server?.stop());

  it("ends a stream that runs past it with a request_timeout error event and frees the sequence", async () => {
    const stream = await openStream(`${server.baseURL}/chat/completions`, { ...ok, stream: true, max_tokens: 8000 });
    expect(stream.status).toBe(200);
    const events = await stream.rest();
    expect(JSON.parse(events.at(-1)!)).toEqual({
      error: { message: expect.stringContaining("limits.requestTimeoutMs"), type: "invalid_request_error", param: null, code: "request_timeout" },
    });
    await engineIdle(server);
  });

  it("answers 408 when it runs out before the response started", async () => {
    const res = await post(server, { ...ok, max_tokens: 8000 });
    expect(res.status).toBe(408);
    expect(res.body.error.code).toBe("request_timeout");
    await engineIdle(server);
    expect((await post(server, { ...ok, max_tokens: 3 })).status).toBe(200);
  });
});
