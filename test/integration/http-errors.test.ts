/**
 * Request rejection paths of the real Fastify app, before any model is involved: the one model
 * here names a file that does not exist, so a request that gets through validation fails to load it.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import pino from "pino";
import type { FastifyInstance } from "fastify";
import { buildServer } from "../../src/server/app.js";
import { loadConfig } from "../../src/config/load.js";
import { ModelRegistry } from "../../src/router/registry.js";
import { createMetrics } from "../../src/metrics/definitions.js";

let app: FastifyInstance;
const config = loadConfig({ set: { "server.bodyLimitBytes": 2048 } }, {});

beforeAll(async () => {
  const logger = pino({ level: "silent" });
  const registry = new ModelRegistry({ config, logger });
  registry.define({ id: "m", sources: ["/nonexistent.gguf"], model: config.model });
  registry.defaultId = "m";
  app = await buildServer({ config, logger, registry, metrics: createMetrics() });
});
afterAll(() => app.close());

const post = (payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: "POST", url: "/v1/chat/completions", payload: typeof payload === "string" ? payload : JSON.stringify(payload), headers: { "content-type": "application/json", ...headers } });

function expectError(res: { statusCode: number; json(): any }, status: number, fields: Partial<{ type: string; code: string; param: string | null }>) {
  expect(res.statusCode).toBe(status);
  const body = res.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error).toMatchObject(fields);
  expect(JSON.stringify(body)).not.toMatch(/at .+\.(ts|js):\d+/);
  return body.error as { message: string };
}

const ok = { model: "m", messages: [{ role: "user", content: "hi" }] };

describe("HTTP errors are OpenAI error objects decided before any stream starts", () => {
  it("missing messages names the param", async () => {
    const e = expectError(await post({ model: "m" }), 400, { type: "invalid_request_error", param: "messages", code: "missing_required_parameter" });
    expect(e.message).toContain("messages");
  });

  it("a wrong type deep inside names the exact path", async () => {
    expectError(await post({ ...ok, messages: [{ role: "user", content: 5 }] }), 400, { param: "messages[0].content", code: "invalid_type" });
    expectError(await post({ ...ok, messages: [{ role: "wizard", content: "x" }] }), 400, { param: "messages[0].role" });
    expectError(await post({ ...ok, temperature: "hot" }), 400, { param: "temperature" });
    expectError(await post({ ...ok, temperature: 3 }), 400, { param: "temperature" });
    expectError(await post({ ...ok, max_tokens: 0 }), 400, { param: "max_tokens" });
    expectError(await post({ ...ok, stop: ["a", 1] }), 400, { param: "stop" });
    expectError(await post({ ...ok, messages: [] }), 400, { param: "messages" });
  });

  it("a non-boolean enable_thinking in chat_template_kwargs is rejected like llama-server does", async () => {
    expectError(await post({ ...ok, chat_template_kwargs: { enable_thinking: "false" } }), 400, { param: "chat_template_kwargs.enable_thinking" });
  });

  it("unsupported content parts are a 400, not a crash", async () => {
    expectError(await post({ ...ok, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] }), 400, {
      param: "messages[0].content[0].type",
    });
  });

  it("invalid JSON, empty body, oversized body", async () => {
    expectError(await post("{not json"), 400, { code: "invalid_json" });
    expectError(await post(""), 400, { param: "body" });
    expectError(await post("[1,2]"), 400, { param: "body" });
    expectError(await post("{not json", { "content-type": "text/plain" }), 400, { code: "invalid_json" });
    expectError(await post({ ...ok, messages: [{ role: "user", content: "x".repeat(4096) }] }), 413, { code: "request_too_large" });
  });

  it("a JSON body is read whatever the content type (curl -d sends form encoding)", async () => {
    expectError(await post(JSON.stringify(ok), { "content-type": "application/x-www-form-urlencoded" }), 503, { code: "model_load_failed" });
  });

  it("unknown model is a 404 model_not_found", async () => {
    expectError(await post({ ...ok, model: "nope" }), 404, { type: "not_found_error", code: "model_not_found", param: "model" });
  });

  it("a known model that cannot load answers 503 naming the reason, also when streaming", async () => {
    const e = expectError(await post(ok), 503, { code: "model_load_failed", type: "service_unavailable_error" });
    expect(e.message).toBe("The model 'm' could not be loaded: model file /nonexistent.gguf does not exist");
    // The SSE headers went out while the model loaded; the failure is the stream's one error event.
    const streamed = await post({ ...ok, stream: true });
    expect(streamed.statusCode).toBe(200);
    expect(streamed.headers["content-type"]).toContain("text/event-stream");
    expect(streamed.body).toBe(`data: ${JSON.stringify({ error: { message: e.message, type: "service_unavailable_error", param: null, code: "model_load_failed" } })}\n\n`);
  });

  it("/health is 503 while the default model is not ready; /v1/models lists the model", async () => {
    const health = await app.inject({ method: "GET", url: "/health" });
    expect(health.statusCode).toBe(503);
    expect(health.json().error.type).toBe("service_unavailable_error");
    const models = await app.inject({ method: "GET", url: "/v1/models" });
    expect(models.json()).toMatchObject({
      object: "list",
      data: [{ id: "m", object: "model", owned_by: "edgellm", status: { value: "unloaded", failed: true }, expires_at: null }],
    });
  });

  it("unknown routes are OpenAI 404s and every response carries a request id", async () => {
    const res = await app.inject({ method: "GET", url: "/v1/nothing", headers: { "x-request-id": "abc-123" } });
    expectError(res, 404, { code: "unknown_url" });
    expect(res.headers["x-request-id"]).toBe("abc-123");
  });
});
