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
  /** Several models are served and the request names none. */
  | { kind: "model_required"; served: number }
  | { kind: "model_not_found"; model: string }
  /** The model's worker could not start: its file is missing or bad, or the load failed (`reason`). */
  | { kind: "model_load_failed"; model: string; reason: string }
  /** model.maxLoaded models are resident and all of them stayed busy for model.loadTimeoutMs. */
  | { kind: "model_capacity"; model: string; loaded: number; maxLoaded: number; retryAfterSeconds: number }
  /** Loading `model` would exceed the memory budget and no idle model is left to unload. */
  | { kind: "insufficient_memory"; model: string; neededMiB: number; usedMiB: number; budgetMiB: number; budget: "model.memoryBudgetMB" | "cgroup"; retryAfterSeconds: number }
  /** The worker is not serving yet: loading its model, restarting after a crash, or neither. */
  | { kind: "worker_not_ready"; phase: "loading" | "restarting" | "not_ready"; retryAfterSeconds: number }
  /** The worker died while the request was in flight. */
  | { kind: "worker_unavailable"; retryAfterSeconds: number }
  | { kind: "shutting_down"; retryAfterSeconds: number }
  | { kind: "request_timeout"; timeoutMs: number }
  | { kind: "client_closed" }
  /**
   * A LoRA adapter a request or an admin call names is unknown, malformed, missing or refused by
   * llama.cpp; `reason` says which, `param` is the request field, `code` the error code.
   */
  | { kind: "adapter_invalid"; param: string; code: string; reason: string }
  /** An admin call adds an adapter under an id the model already has. */
  | { kind: "adapter_exists"; id: string }
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
