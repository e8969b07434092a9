/** Admission and backpressure on the real engine: a bounded wait queue answers 429 instead of queueing forever. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { engineModel, startTestServer, type TestServer } from "../helpers/server.js";

describe("bounded wait queue", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["alpha beta gamma delta epsilon zeta eta theta"], { loop: true }), {
      "model.sequences": 1,
      "limits.maxQueuedRequests": 1,
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const engine = () => engineModel(server);

  it("answers 429 with Retry-After when the queue is full, and serves the queued request once a slot frees", async () => {
    const running = new AbortController();
    const first = await client.chat.completions.create(
      { model: server.modelId, messages: [{ role: "user", content: "go" }], stream: true, max_tokens: 900 },
      { signal: running.signal },
    );
    const firstDone = (async () => {
      try {
        for await (const _ of first);
      } catch {
        // aborted below
      }
    })();
    while ((await engine()).running === 0) await new Promise((r) => setTimeout(r, 10));

    const queued = client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "next" }], max_tokens: 4 });
    while ((await engine()).queued === 0) await new Promise((r) => setTimeout(r, 10));

    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "one more" }], stream: true }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    const body = (await res.json()) as { error: { type: string; code: string; message: string } };
    expect(body.error).toMatchObject({ type: "rate_limit_error", code: "server_busy" });
    expect(body.error.message).toContain("already waiting");

    running.abort();
    await firstDone;
    const served = await queued;
    expect(served.usage!.completion_tokens).toBe(4);
    expect(await engine()).toMatchObject({ queued: 0, running: 0 });
  });
});
