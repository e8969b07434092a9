/** Builders for chat.completion and chat.completion.chunk objects, exactly in OpenAI's shape. */
import type { FinishReason, TokenLogprob } from "../engine/types.js";

export interface ChatDelta {
  role?: "assistant";
  content?: string | null;
  reasoning_content?: string;
  reasoning?: string;
  tool_calls?: Array<{
    index: number;
    id?: string;
    type?: "function";
    function: { name?: string; arguments: string };
  }>;
}

export interface ChatMessageOut {
  role: "assistant";
  content: string | null;
  reasoning_content?: string;
  reasoning?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
}

export type WireFinishReason = FinishReason | "tool_calls";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

export function usage(prompt: number, completion: number, cached: number, reasoning: number): Usage {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
    completion_tokens_details: { reasoning_tokens: reasoning },
  };
}

/** `choices[].logprobs` of chat: OpenAI's ChatCompletion ChoiceLogprobs. */
export interface ChatLogprobs {
  content: Array<{ token: string; logprob: number; bytes: number[]; top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }> }>;
  refusal: null;
}

export function chatLogprobs(entries: readonly TokenLogprob[]): ChatLogprobs {
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: e.bytes,
      top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
    refusal: null,
  };
}

export interface CompletionIds {
  id: string;
  created: number;
  model: string;
}

export function chunk(ids: CompletionIds, index: number, delta: ChatDelta, finishReason: WireFinishReason | null = null, logprobs: ChatLogprobs | null = null) {
  return {
    id: ids.id,
    object: "chat.completion.chunk" as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: [{ index, delta, logprobs, finish_reason: finishReason }],
  };
}

export function usageChunk(ids: CompletionIds, u: Usage) {
  return { id: ids.id, object: "chat.completion.chunk" as const, created: ids.created, model: ids.model, system_fingerprint: null, choices: [], usage: u };
}

export function completion(
  ids: CompletionIds,
  choices: Array<{ message: ChatMessageOut; finishReason: WireFinishReason; logprobs: ChatLogprobs | null }>,
  u: Usage,
) {
  return {
    id: ids.id,
    object: "chat.completion" as const,
    created: ids.created,
    model: ids.model,
    system_fingerprint: null,
    choices: choices.map((c, index) => ({ index, message: c.message, logprobs: c.logprobs, finish_reason: c.finishReason })),
    usage: u,
  };
}
