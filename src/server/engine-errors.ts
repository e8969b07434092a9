/**
 * The engine's error kinds as HTTP: status, OpenAI error type, code, message and headers, in
 * one place. Every API the server speaks starts from these ApiErrors (the Anthropic routes
 * turn them into their own body in the error handler).
 */
import { EngineError, type EngineErrorInfo } from "../engine/errors.js";
import { ApiError, contextLengthExceeded, internalError, invalidRequest, modelNotFound, clientClosed } from "../openai/errors.js";

const retryAfter = (seconds: number) => ({ "retry-after": String(seconds) });

export function httpError(info: EngineErrorInfo): ApiError {
  switch (info.kind) {
    case "context_too_long":
      return contextLengthExceeded(info.contextSize, info.promptTokens, info.maxTokens, info.param);
    case "prompt_too_long":
      return invalidRequest(
        `The prompt has ${info.promptTokens} tokens; this server accepts at most ${info.limit} (limits.maxPromptTokens)`,
        info.param,
        "limit_exceeded",
      );
    case "empty_prompt":
      return invalidRequest("The prompt is empty: it must hold at least one token", info.param);
    case "invalid_token":
      return invalidRequest(`${info.at} is not a token id of this model (0 to ${info.vocabularySize - 1})`, info.param, "invalid_token");
    case "input_too_long":
      return invalidRequest(
        `input[${info.index}] has ${info.inputTokens} tokens, but this model embeds at most ${info.contextSize - 1} tokens per input ` +
          `(model.contextSize ${info.contextSize}); shorten or split it`,
        "input",
        "context_length_exceeded",
      );
    case "template_missing":
      return invalidRequest("This model has no chat template, which chat completions need", "messages", "chat_template_missing");
    case "template_rejected":
      return invalidRequest(info.reason, "messages", "invalid_conversation");
    case "queue_full":
      return new ApiError(
        429,
        "rate_limit_error",
        `The server is at capacity: ${info.queued} requests (${info.queuedTokens} prompt tokens) are already waiting for a sequence; retry shortly`,
        { code: "server_busy", headers: retryAfter(info.retryAfterSeconds) },
      );
    case "model_not_embedding":
      return invalidRequest(
        `The model '${info.model}' is not an embedding model: its GGUF declares no sentence pooling ` +
          `(${info.architecture}.pooling_type mean, cls or last). ` +
          "Serve an embedding model (e.g. Qwen3-Embedding-0.6B, pooling last) to use /v1/embeddings.",
        "model",
        "model_not_embedding",
      );
    case "model_not_generative":
      return invalidRequest(
        `The model '${info.model}' is an embedding model (its GGUF declares a pooling type): it serves /v1/embeddings only. ` +
          "Serve a chat model for completions.",
        "model",
        "model_not_generative",
      );
    case "adapter_rejected":
      return invalidRequest(`Could not load ${info.file} as a LoRA adapter of this model: ${info.reason}`, "path", "invalid_adapter");
    case "adapter_needs_generative":
      return invalidRequest(`${info.model} is an embedding model: LoRA adapters apply to generation only`, "path", "invalid_adapter");
    case "adapter_removed":
      return invalidRequest(`The LoRA adapter ${info.path} was removed from this model`, "lora", "adapter_not_found");
    case "model_required":
      return invalidRequest(`'model' is required: this server serves ${info.served} models (see /v1/models)`, "model", "missing_required_parameter");
    case "model_not_found":
      return modelNotFound(info.model);
    case "worker_not_ready": {
      const { message, code } = NOT_READY[info.phase];
      return new ApiError(503, "service_unavailable_error", message, { code, headers: retryAfter(info.retryAfterSeconds) });
    }
    case "worker_unavailable":
      return new ApiError(503, "service_unavailable_error", "The model worker stopped unexpectedly; retry the request", {
        code: "worker_unavailable",
        headers: retryAfter(info.retryAfterSeconds),
      });
    case "shutting_down":
      return new ApiError(503, "service_unavailable_error", "The server is shutting down", {
        code: "shutting_down",
        headers: retryAfter(info.retryAfterSeconds),
      });
    case "request_timeout":
      return new ApiError(
        408,
        "invalid_request_error",
        `The request did not finish within the server's deadline of ${info.timeoutMs} ms (limits.requestTimeoutMs)`,
        { code: "request_timeout" },
      );
    case "client_closed":
      return clientClosed();
    case "internal":
      return internalError();
  }
}

const NOT_READY = {
  loading: { message: "The model is loading; retry shortly", code: "model_loading" },
  restarting: { message: "The model worker is restarting; retry shortly", code: "worker_restarting" },
  not_ready: { message: "The model is not ready; retry shortly", code: "model_loading" },
} as const;

/** An EngineError thrown by the router or a worker as its ApiError; anything else as it is. */
export function asHttpError(err: unknown): unknown {
  return err instanceof EngineError ? httpError(err.info) : err;
}
