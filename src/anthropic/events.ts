/**
 * Anthropic's streaming events from the chat assembler's deltas: reasoning, content and each
 * tool call become content blocks, opened and closed in order (a block is never reopened).
 */
import type { ChatDelta } from "../openai/chunks.js";
import { message, thinkingBlock, toolUseId, type ContentBlockOut, type MessageIds, type MessageUsage, type StopReason } from "./message.js";
import type { AnthropicErrorBody } from "./errors.js";

export interface StreamEvent {
  event: string;
  data: { type: string };
}

const event = (type: string, fields: Record<string, unknown> = {}): StreamEvent => ({ event: type, data: { type, ...fields } });

type BlockKey = "thinking" | "text" | `tool:${number}`;

export class MessageEvents {
  private index = -1;
  private open: BlockKey | undefined;

  constructor(private readonly ids: MessageIds) {}

  /** message_start, then a ping as Anthropic sends one. Cache reads are known only at the end: message_delta brings them. */
  start(promptTokens: number): StreamEvent[] {
    const usage: MessageUsage = { input_tokens: promptTokens, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    return [event("message_start", { message: message(this.ids, [], { reason: null, sequence: null }, usage) }), event("ping")];
  }

  deltas(deltas: ChatDelta[]): StreamEvent[] {
    const out: StreamEvent[] = [];
    for (const d of deltas) {
      if (d.reasoning_content) {
        this.enter("thinking", thinkingBlock(""), out);
        out.push(this.delta({ type: "thinking_delta", thinking: d.reasoning_content }));
      }
      if (d.content) {
        this.enter("text", { type: "text", text: "" }, out);
        out.push(this.delta({ type: "text_delta", text: d.content }));
      }
      for (const call of d.tool_calls ?? []) {
        const key: BlockKey = `tool:${call.index}`;
        if (call.id) this.enter(key, { type: "tool_use", id: toolUseId(call.id), name: call.function.name ?? "", input: {} }, out);
        if (call.function.arguments && this.open === key) out.push(this.delta({ type: "input_json_delta", partial_json: call.function.arguments }));
      }
    }
    return out;
  }

  finish(reason: StopReason, sequence: string | null, usage: MessageUsage): StreamEvent[] {
    const out: StreamEvent[] = [];
    this.close(out);
    out.push(event("message_delta", { delta: { stop_reason: reason, stop_sequence: sequence }, usage }), event("message_stop"));
    return out;
  }

  static error(body: AnthropicErrorBody): StreamEvent {
    return { event: "error", data: body };
  }

  private enter(key: BlockKey, block: ContentBlockOut, out: StreamEvent[]): void {
    if (this.open === key) return;
    this.close(out);
    this.open = key;
    this.index++;
    out.push(event("content_block_start", { index: this.index, content_block: block }));
  }

  private close(out: StreamEvent[]): void {
    if (this.open === undefined) return;
    out.push(event("content_block_stop", { index: this.index }));
    this.open = undefined;
  }

  private delta(delta: Record<string, unknown>): StreamEvent {
    return event("content_block_delta", { index: this.index, delta });
  }
}
