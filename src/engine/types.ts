/**
 * What the API layer asks of an engine, and what comes back. Plain data: it crosses the
 * worker IPC boundary as JSON.
 */
import type { EngineErrorInfo } from "./errors.js";
import type { Config } from "../config/schema.js";

/** What an engine is started with: its model file, the id it serves it as, and the settings it obeys. */
export interface EngineOptions {
  modelPath: string;
  modelId: string;
  model: Config["model"];
  generation: Config["generation"];
  /** The bounds the engine enforces itself; the server checks the other limits before a request reaches it. */
  limits: Pick<Config["limits"], "maxPromptTokens" | "maxQueuedRequests" | "maxQueuedTokens">;
  /** Where memory estimates are kept across starts (estimate-cache.ts); none: computed every time. */
  estimateCacheDir?: string;
  /** The repacked-weights cache's root (repack-cache.ts); none: llama.cpp repacks at every load. */
  repackCacheDir?: string;
}

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
  /**
   * A raw prompt (/v1/completions): evaluated as is instead of rendering `messages`, `tools` and
   * the template; text has its special tokens parsed and gets the model's BOS token if it wants one.
   * No thinking: the output is plain text.
   */
  prompt?: string | number[];
  tools?: ToolSpec[];
  /** Extra variables for the chat template (chat_template_kwargs). */
  templateKwargs: Record<string, unknown>;
  /**
   * Thinking as the client asked for it (whichever spelling it used); undefined = it did not say.
   * Whether the prompt thinks is decided by the engine alone (the template may have no switch),
   * and reported in StartedInfo.
   */
  enableThinking?: boolean;
  /** Completion tokens; undefined = config default, bounded by what the context can hold. */
  maxTokens?: number;
  /** Thought tokens before the engine closes the think block itself, as asked; 0 = unlimited, undefined = config default. */
  thinkingBudget?: number;
  /** Constrains the answer (the text after any think block); undefined = free text. */
  grammar?: GrammarSpec;
  sampling: SamplingParams;
  stop: string[];
  /** Report each completion token's log-probability and this many most likely alternatives; undefined = off. */
  logprobs?: number;
  /** LoRA adapters to run with (resolved by the main process); absent or empty = the base model. */
  adapters?: AdapterUse[];
  /**
   * Choices to generate from the one prompt (absent = 1): the engine renders and tokenizes it
   * once, and its first choice's KV cache is forked for the others. With a seed, choice i samples
   * with seed + i. Their text and done events carry their `index`.
   */
  n?: number;
}

/** One LoRA adapter a request runs with: the adapter file (absolute path) and its scale. */
export interface AdapterUse {
  path: string;
  scale: number;
}

/**
 * A JSON Schema in the dialect node-llama-cpp's grammar converter understands (GbnfJsonSchema).
 * The API layer validates and translates client schemas into it before they reach a worker.
 */
export type GrammarJsonSchema = Record<string, unknown>;

/**
 * What the answer must look like, as plain data (grammars are built inside the worker).
 * With both fields the answer is either tool calls or the JSON reply.
 */
export interface GrammarSpec {
  /** Qwen3 / Hermes `<tool_call>` blocks, each calling one of `tools`. */
  toolCalls?: {
    tools: Array<{ name: string; parameters: GrammarJsonSchema }>;
    /** More than one call allowed (parallel_tool_calls). */
    parallel: boolean;
  };
  /** A JSON value of this schema (response_format). */
  json?: GrammarJsonSchema;
}

export type FinishReason = "stop" | "length";

/** Sent once the request is validated, tokenized and queued; failures after it are mid-stream errors. */
export interface StartedInfo {
  promptTokens: number;
  /** Whether the rendered prompt asked the model to think. */
  thinking: boolean;
  /** The prompt itself ended inside an open `<think>` block. */
  startsInReasoning: boolean;
}

export interface Timings {
  queueMs: number;
  prefillMs: number;
}

/** A token as logprobs show it: its text and that text's UTF-8 bytes. */
export interface TokenText {
  token: string;
  bytes: number[];
  /** Natural log of the token's probability under the model's raw distribution (before sampling filters). */
  logprob: number;
}

export interface TokenLogprob extends TokenText {
  /** The most likely tokens at this position, most likely first. */
  top: TokenText[];
}

export type GenerationEvent =
  | { type: "started"; info: StartedInfo }
  /**
   * `logprobs` (when asked for) covers the answer tokens whose text starts in `text` or earlier;
   * the tokens of a think block are not reported.
   */
  | { type: "text"; index: number; text: string; tokens: number; logprobs?: TokenLogprob[] }
  | {
      type: "done";
      /** The choice that ended; the request ends when all of them did. */
      index: number;
      finishReason: FinishReason;
      completionTokens: number;
      /** Completion tokens that opened, continued or closed the think block. */
      reasoningTokens: number;
      /** Prompt tokens reused from the KV cache instead of evaluated. */
      cachedTokens: number;
      /** The stop string that ended the generation, when one did. */
      stopSequence?: string;
      timings: Timings;
    }
  /** The request failed: all its choices end (those still running are cancelled). */
  | { type: "failed"; error: EngineErrorInfo };

export interface ModelInfo {
  id: string;
  path: string;
  /** Tokens one request may hold (prompt + completion). */
  contextSize: number;
  sequences: number;
  kvPool: "unified" | "per-sequence";
  /** KV cells of all sequences together. */
  kvPoolTokens: number;
  /** Which node-llama-cpp addon runs: the prebuilt one or one built from source (unified KV). */
  addonBuild: "portable" | "native" | "prebuilt";
  trainContextSize: number;
  chatTemplate: boolean;
  supportsThinking: boolean;
  /** How an embedding model pools (its GGUF's `<arch>.pooling_type`); null for a chat model. */
  pooling: EmbeddingPooling | null;
  sizeBytes: number;
  loadMs: number;
}

/** Tokenizer and template work that needs the model but no sequence (/tokenize, /detokenize, /apply-template). */
export type TextOp =
  /** `parseSpecial`: `<|im_start|>` is one special token, not its characters; `addSpecial`: prepend the BOS token, if the model has one. */
  | { kind: "tokenize"; text: string; addSpecial: boolean; parseSpecial: boolean; withPieces: boolean }
  | { kind: "detokenize"; tokens: number[] }
  | { kind: "apply_template"; request: GenerationRequest };

export type TextOpResult =
  | { kind: "tokenize"; tokens: number[]; pieces?: string[] }
  | { kind: "detokenize"; content: string }
  | { kind: "apply_template"; prompt: string };

/** What /v1/engine shows of a worker's engine. */
export interface EngineStatus {
  queued: number;
  queuedTokens: number;
  running: number;
  /** Requests preempted since the worker started (KV pool exhausted). */
  preemptions: number;
  kv: { unified: boolean; pageTokens: number; totalPages: number; usedPages: number; sharedPages: number };
  /** Tokens per decode round since the last drained status (for the batch-size histogram). */
  roundTokens?: number[];
  /** Per decode round since the last drained status: the sequences it served and the native addon calls it took. */
  decodeCalls?: Array<{ sequences: number; nativeCalls: number }>;
  slots: Array<{ id: number; phase: "idle" | "prefill" | "decode"; cachedTokens: number }>;
}

/** How llama.cpp pools an embedding model's final hidden states into one vector. */
export type EmbeddingPooling = "mean" | "cls" | "last";

/** Inputs of one /v1/embeddings request: texts, or token ids taken as they are. */
export interface EmbeddingRequest {
  requestId: string;
  input: Array<string | number[]>;
}

export interface EmbeddingResult {
  /** One L2-normalized vector per input, in input order. */
  vectors: number[][];
  /** Tokens evaluated, with any BOS/EOS the model adds. */
  promptTokens: number;
}
