/** Each engine error kind as the HTTP error clients receive: status, OpenAI error object and headers. */
import { describe, it, expect } from "vitest";
import type { EngineErrorInfo, EngineErrorKind } from "../../src/engine/errors.js";
import { EngineError } from "../../src/engine/errors.js";
import { asHttpError, httpError } from "../../src/server/engine-errors.js";
import { anthropicErrorBody } from "../../src/anthropic/errors.js";

/** One of every kind: a kind added to EngineErrorInfo without a case here fails the type check. */
const SAMPLES: { [K in EngineErrorKind]: Extract<EngineErrorInfo, { kind: K }> } = {
  context_too_long: { kind: "context_too_long", param: "messages", contextSize: 256, promptTokens: 200, maxTokens: 100 },
  prompt_too_long: { kind: "prompt_too_long", param: "prompt", promptTokens: 40, limit: 32 },
  empty_prompt: { kind: "empty_prompt", param: "prompt" },
  invalid_token: { kind: "invalid_token", param: "prompt", at: "prompt[2]", vocabularySize: 1000 },
  input_too_long: { kind: "input_too_long", index: 1, inputTokens: 600, contextSize: 512 },
  template_missing: { kind: "template_missing" },
  template_rejected: { kind: "template_rejected", reason: "Conversation roles must alternate" },
  queue_full: { kind: "queue_full", queued: 3, queuedTokens: 120, retryAfterSeconds: 2 },
  model_not_embedding: { kind: "model_not_embedding", model: "chat", architecture: "qwen3" },
  model_not_generative: { kind: "model_not_generative", model: "embed" },
  adapter_rejected: { kind: "adapter_rejected", file: "/m/bad.gguf", reason: "bad magic" },
  adapter_needs_generative: { kind: "adapter_needs_generative", model: "embed" },
  adapter_removed: { kind: "adapter_removed", path: "/m/style.gguf" },
  model_required: { kind: "model_required", served: 2 },
  model_not_found: { kind: "model_not_found", model: "nope" },
  worker_not_ready: { kind: "worker_not_ready", phase: "restarting", retryAfterSeconds: 2 },
  worker_unavailable: { kind: "worker_unavailable", retryAfterSeconds: 1 },
  shutting_down: { kind: "shutting_down", retryAfterSeconds: 5 },
  request_timeout: { kind: "request_timeout", timeoutMs: 1500 },
  client_closed: { kind: "client_closed" },
  internal: { kind: "internal" },
};

const EXPECTED: Record<EngineErrorKind, { status: number; type: string; code: string; param: string | null; message: string; headers?: Record<string, string> }> = {
  context_too_long: {
    status: 400,
    type: "invalid_request_error",
    code: "context_length_exceeded",
    param: "messages",
    message:
      "This model's maximum context length is 256 tokens. However, you requested 300 tokens (200 in the messages, 100 in the completion). " +
      "Please reduce the length of the messages or completion.",
  },
  prompt_too_long: {
    status: 400,
    type: "invalid_request_error",
    code: "limit_exceeded",
    param: "prompt",
    message: "The prompt has 40 tokens; this server accepts at most 32 (limits.maxPromptTokens)",
  },
  empty_prompt: { status: 400, type: "invalid_request_error", code: "invalid_value", param: "prompt", message: "The prompt is empty: it must hold at least one token" },
  invalid_token: { status: 400, type: "invalid_request_error", code: "invalid_token", param: "prompt", message: "prompt[2] is not a token id of this model (0 to 999)" },
  input_too_long: {
    status: 400,
    type: "invalid_request_error",
    code: "context_length_exceeded",
    param: "input",
    message: "input[1] has 600 tokens, but this model embeds at most 511 tokens per input (model.contextSize 512); shorten or split it",
  },
  template_missing: {
    status: 400,
    type: "invalid_request_error",
    code: "chat_template_missing",
    param: "messages",
    message: "This model has no chat template, which chat completions need",
  },
  template_rejected: { status: 400, type: "invalid_request_error", code: "invalid_conversation", param: "messages", message: "Conversation roles must alternate" },
  queue_full: {
    status: 429,
    type: "rate_limit_error",
    code: "server_busy",
    param: null,
    message: "The server is at capacity: 3 requests (120 prompt tokens) are already waiting for a sequence; retry shortly",
    headers: { "retry-after": "2" },
  },
  model_not_embedding: {
    status: 400,
    type: "invalid_request_error",
    code: "model_not_embedding",
    param: "model",
    message:
      "The model 'chat' is not an embedding model: its GGUF declares no sentence pooling (qwen3.pooling_type mean, cls or last). " +
      "Serve an embedding model (e.g. Qwen3-Embedding-0.6B, pooling last) to use /v1/embeddings.",
  },
  model_not_generative: {
    status: 400,
    type: "invalid_request_error",
    code: "model_not_generative",
    param: "model",
    message: "The model 'embed' is an embedding model (its GGUF declares a pooling type): it serves /v1/embeddings only. Serve a chat model for completions.",
  },
  adapter_rejected: {
    status: 400,
    type: "invalid_request_error",
    code: "invalid_adapter",
    param: "path",
    message: "Could not load /m/bad.gguf as a LoRA adapter of this model: bad magic",
  },
  adapter_needs_generative: {
    status: 400,
    type: "invalid_request_error",
    code: "invalid_adapter",
    param: "path",
    message: "embed is an embedding model: LoRA adapters apply to generation only",
  },
  adapter_removed: {
    status: 400,
    type: "invalid_request_error",
    code: "adapter_not_found",
    param: "lora",
    message: "The LoRA adapter /m/style.gguf was removed from this model",
  },
  model_required: {
    status: 400,
    type: "invalid_request_error",
    code: "missing_required_parameter",
    param: "model",
    message: "'model' is required: this server serves 2 models (see /v1/models)",
  },
  model_not_found: { status: 404, type: "not_found_error", code: "model_not_found", param: "model", message: "The model 'nope' does not exist" },
  worker_not_ready: {
    status: 503,
    type: "service_unavailable_error",
    code: "worker_restarting",
    param: null,
    message: "The model worker is restarting; retry shortly",
    headers: { "retry-after": "2" },
  },
  worker_unavailable: {
    status: 503,
    type: "service_unavailable_error",
    code: "worker_unavailable",
    param: null,
    message: "The model worker stopped unexpectedly; retry the request",
    headers: { "retry-after": "1" },
  },
  shutting_down: {
    status: 503,
    type: "service_unavailable_error",
    code: "shutting_down",
    param: null,
    message: "The server is shutting down",
    headers: { "retry-after": "5" },
  },
  request_timeout: {
    status: 408,
    type: "invalid_request_error",
    code: "request_timeout",
    param: null,
    message: "The request did not finish within the server's deadline of 1500 ms (limits.requestTimeoutMs)",
  },
  client_closed: { status: 499, type: "invalid_request_error", code: "client_closed_request", param: null, message: "The client closed the request" },
  internal: { status: 500, type: "server_error", code: "internal_error", param: null, message: "The server had an error while processing your request" },
};

describe("httpError", () => {
  it.each(Object.keys(SAMPLES) as EngineErrorKind[])("maps %s to its status, error object and headers", (kind) => {
    const err = httpError(SAMPLES[kind]);
    const { status, headers = {}, ...error } = EXPECTED[kind];
    expect(err.status).toBe(status);
    expect(err.headers).toEqual(headers);
    expect(err.toBody()).toEqual({ error: { message: error.message, type: error.type, param: error.param, code: error.code } });
  });

  it("tells a worker that is loading from one that is restarting or not ready", () => {
    const phase = (p: "loading" | "restarting" | "not_ready") => httpError({ kind: "worker_not_ready", phase: p, retryAfterSeconds: 2 });
    expect([phase("loading"), phase("restarting"), phase("not_ready")].map((e) => [e.code, e.message])).toEqual([
      ["model_loading", "The model is loading; retry shortly"],
      ["worker_restarting", "The model worker is restarting; retry shortly"],
      ["model_loading", "The model is not ready; retry shortly"],
    ]);
  });

  it("gives the Anthropic routes the same kinds in Anthropic's body", () => {
    expect(anthropicErrorBody(httpError(SAMPLES.queue_full))).toEqual({ type: "error", error: { type: "rate_limit_error", message: EXPECTED.queue_full.message } });
    expect(anthropicErrorBody(httpError(SAMPLES.shutting_down))).toEqual({ type: "error", error: { type: "overloaded_error", message: "The server is shutting down" } });
  });
});

describe("asHttpError", () => {
  it("maps an EngineError and leaves anything else as it is", () => {
    expect(asHttpError(new EngineError(SAMPLES.model_not_found))).toMatchObject({ status: 404, code: "model_not_found" });
    const other = new Error("not an engine error");
    expect(asHttpError(other)).toBe(other);
  });
});
