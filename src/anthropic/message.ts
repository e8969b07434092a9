/** Builders for Anthropic's `message` object: content blocks, stop reason and usage from a finished chat choice. */
import type { ChatMessageOut, WireFinishReason } from "../openai/chunks.js";

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

export type ContentBlockOut =
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown };

export interface MessageUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

export interface MessageIds {
  id: string;
  model: string;
}

/** Anthropic-style tool use id; it keeps the chat call id's random part so both name the same call. */
export function toolUseId(callId: string): string {
  return `toolu_${callId.replace(/^call_/, "")}`;
}

/**
 * Thoughts are not signed here: `signature` is empty, and signatures sent back with earlier
 * thinking blocks are ignored.
 */
export function thinkingBlock(thinking: string): ContentBlockOut {
  return { type: "thinking", thinking, signature: "" };
}

/** Tool calls win over a stop string: a client must act on the calls it got. */
export function stopReason(finish: WireFinishReason, stopSequence: string | undefined): StopReason {
  if (finish === "tool_calls") return "tool_use";
  if (finish === "length") return "max_tokens";
  return stopSequence === undefined ? "end_turn" : "stop_sequence";
}

/** Anthropic counts prompt tokens read from the cache apart from the input tokens. */
export function messageUsage(promptTokens: number, cachedTokens: number, outputTokens: number): MessageUsage {
  return { input_tokens: promptTokens - cachedTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: cachedTokens };
}

export function contentBlocks(msg: ChatMessageOut): ContentBlockOut[] {
  const blocks: ContentBlockOut[] = [];
  if (msg.reasoning_content) blocks.push(thinkingBlock(msg.reasoning_content));
  if (msg.content) blocks.push({ type: "text", text: msg.content });
  for (const call of msg.tool_calls ?? []) {
    blocks.push({ type: "tool_use", id: toolUseId(call.id), name: call.function.name, input: JSON.parse(call.function.arguments) });
  }
  return blocks;
}

export function message(ids: MessageIds, content: ContentBlockOut[], stop: { reason: StopReason | null; sequence: string | null }, usage: MessageUsage) {
  return {
    id: ids.id,
    type: "message" as const,
    role: "assistant" as const,
    model: ids.model,
    content,
    stop_reason: stop.reason,
    stop_sequence: stop.sequence,
    usage,
  };
}
