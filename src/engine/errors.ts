/**
 * What can go wrong with one request inside the engine, its worker process or the worker link,
 * as plain data: a `kind` and the numbers that explain it. It crosses the worker IPC as is.
 * Nothing here knows HTTP; the server maps each kind to its status, error object and headers
 * (the server's engine-errors module), as llama.cpp's server maps its `error_type`.
 */

/** What holds the prompt: a chat request's `messages`, or a completion's `prompt`. */
export type PromptParam = "messages" | "prompt";

export type EngineErrorInfo =
  /** The prompt plus the tokens asked for (at least one) do not fit in the context. */
  | { kind: "context_too_long"; param: PromptParam; contextSize: number; promptTokens: number; maxTokens: number }
  /** The prompt is longer than limits.maxPromptTokens. */
  | { kind: "prompt_too_long"; param: PromptParam; promptTokens: number; limit: number }
  | { kind: "empty_prompt"; param: PromptParam }
  /** `at` names the offending id (`prompt[3]`, `input[0][2]`) inside the request field `param`. */
  | { kind: "invalid_token"; param: string; at: string; vocabularySize: number }
  /** One embedding input does not fit in the embedding context. */
  | { kind: "input_too_long"; index: number; inputTokens: number; contextSize: number }
  | { kind: "template_missing" }
  /** The chat template's own raise_exception() refused the conversation, saying `reason`. */
  | { kind: "template_rejected"; reason: string }
  /** The bounded wait queue is full. */
  | { kind: "queue_full"; queued: number; queuedTokens: number; retryAfterSeconds: number }
  | { kind: "model_not_embedding"; model: string; architecture: string }
  | { kind: "model_not_generative"; model: string }
  /** llama.cpp would not load `file` as a LoRA adapter of this model, saying `reason`. */
  | { kind: "adapter_rejected"; file: string; reason: string }
  /** LoRA adapters apply to generation; this model embeds. */
  | { kind: "adapter_needs_generative"; model: string }
  /** The request selected an adapter that was removed after the request was routed. */
  | { kind: "adapter_removed"; path: string }
  /** Several models are served and the request names none. */
  | { kind: "model_required"; served: number }
  | { kind: "model_not_found"; model: string }
  /** The worker is not serving yet: loading its model, restarting after a crash, or neither. */
  | { kind: "worker_not_ready"; phase: "loading" | "restarting" | "not_ready"; retryAfterSeconds: number }
  /** The worker died while the request was in flight. */
  | { kind: "worker_unavailable"; retryAfterSeconds: number }
  | { kind: "shutting_down"; retryAfterSeconds: number }
  | { kind: "request_timeout"; timeoutMs: number }
  | { kind: "client_closed" }
  /** Anything unexpected; its details stay in the worker's log. */
  | { kind: "internal" };

export type EngineErrorKind = EngineErrorInfo["kind"];

export class EngineError extends Error {
  override name = "EngineError";

  constructor(readonly info: EngineErrorInfo) {
    super(info.kind);
  }
}

/** The error's data for the IPC; anything not an EngineError is `internal` (no native message leaks). */
export function toEngineErrorInfo(err: unknown): EngineErrorInfo {
  return err instanceof EngineError ? err.info : { kind: "internal" };
}
