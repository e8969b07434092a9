/**
 * What the API layer asks of an engine, and what comes back. Plain data: it crosses the
 * worker IPC boundary as JSON.
 */
import type { SerializedApiError } from "../openai/errors.js";

/** A chat message as the chat template sees it (after normalization of the wire format). */
export interface TemplateMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  name?: string;
  reasoning_content?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: unknown } }>;
  tool_call_id?: string;
}

export interface ToolSpec {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** Sampling knobs; an absent field takes the model's recommended value for the thinking mode. */
export interface SamplingParams {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repeatPenalty?: number;
}

export interface GenerationRequest {
  requestId: string;
  messages: TemplateMessage[];
  tools?: ToolSpec[];
  /** Extra variables for the chat template (chat_template_kwargs). */
  templateKwargs: Record<string, unknown>;
  /** Effective thinking switch; undefined = server default. */
  enableThinking?: boolean;
  /** Completion tokens; undefined = config default, bounded by what the context can hold. */
  maxTokens?: number;
  sampling: SamplingParams;
  stop: string[];
}

export type FinishReason = "stop" | "length";

/** Sent once the request is validated, tokenized and queued; failures after it are mid-stream errors. */
export interface StartedInfo {
  promptTokens: number;
  /** Whether the rendered prompt asked the model to think. */
  thinking: boolean;
  /** The prompt itself ended inside an open `<think>` block. */
  startsInReasoning: boolean;
  maxTokens: number;
}

export interface Timings {
  queueMs: number;
  prefillMs: number;
  decodeMs: number;
}

export type GenerationEvent =
  | { type: "started"; info: StartedInfo }
  | { type: "text"; text: string; tokens: number }
  | {
      type: "done";
      finishReason: FinishReason;
      completionTokens: number;
      /** Prompt tokens reused from the KV cache instead of evaluated. */
      cachedTokens: number;
      timings: Timings;
    }
  | { type: "failed"; error: SerializedApiError };

export interface ModelInfo {
  id: string;
  path: string;
  contextSize: number;
  sequences: number;
  trainContextSize: number;
  chatTemplate: boolean;
  supportsThinking: boolean;
  sizeBytes: number;
  loadMs: number;
}

/** What /v1/engine shows of a worker's engine. */
export interface EngineStatus {
  queued: number;
  running: number;
  /** Tokens per decode round since the last drained status (for the batch-size histogram). */
  roundTokens?: number[];
  slots: Array<{ id: number; phase: "idle" | "prefill" | "decode"; cachedTokens: number }>;
}
