/**
 * Turns one choice's text stream into OpenAI deltas (streaming) and a final message
 * (non-streaming): reasoning split from content by the chat/ parsers, then tool calls parsed from
 * the content (never from the reasoning).
 */
import { randomBytes } from "node:crypto";
import { ReasoningParser, type ReasoningEvent } from "../chat/reasoning-parser.js";
import { ToolCallParser, type ToolCallEvent } from "../chat/tool-call-parser.js";
import type { ChatDelta, ChatMessageOut, WireFinishReason } from "./chunks.js";
import type { ResponseOptions } from "./normalize.js";
import type { FinishReason } from "../engine/types.js";

export interface AssemblerOptions extends ResponseOptions {
  /** The prompt asked the model to think (Qwen3 enable_thinking). */
  thinking: boolean;
  /** The prompt itself opened `<think>`. */
  startsInReasoning: boolean;
}

/** Inline reasoning is wrapped the way Qwen3 writes it. */
const INLINE_OPEN = "<think>\n";
const INLINE_CLOSE = "\n</think>\n\n";

/** OpenAI-style call id: `call_` and 24 random characters. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString("hex")}`;
}

interface Call {
  id: string;
  name: string;
  arguments: string;
  /** Its `<tool_call>` block turned out unusable after it was announced. */
  void: boolean;
}

export class ChoiceAssembler {
  private readonly thoughts: ReasoningParser;
  private readonly tools: ToolCallParser | undefined;
  private content = "";
  private reasoning = "";
  /** Tool calls by the parser's index. */
  private readonly calls = new Map<number, Call>();
  private inline: "closed" | "open" | "done" = "closed";

  constructor(private readonly opts: AssemblerOptions) {
    this.thoughts = new ReasoningParser({ enabled: opts.thinking, startsInReasoning: opts.startsInReasoning });
    if (opts.toolCalls) this.tools = new ToolCallParser();
  }

  /** All reasoning so far, also when withheld from the client (the route logs it at debug). */
  get reasoningText(): string {
    return this.reasoning;
  }

  /** Feeds generated text. */
  push(text: string): ChatDelta[] {
    return this.toDeltas(this.thoughts.push(text), false);
  }

  finish(): ChatDelta[] {
    return this.toDeltas(this.thoughts.flush(), true);
  }

  finishReason(engineReason: FinishReason): WireFinishReason {
    return engineReason === "stop" && this.validCalls().length > 0 ? "tool_calls" : engineReason;
  }

  message(): ChatMessageOut {
    const calls = this.validCalls();
    // OpenAI sends null content with tool calls and nothing else; otherwise always a string.
    const msg: ChatMessageOut = { role: "assistant", content: calls.length > 0 && this.content === "" ? null : this.content };
    if (this.showsSeparateReasoning() && this.reasoningText) {
      msg.reasoning_content = this.reasoningText;
      if (this.opts.reasoningAlias) msg.reasoning = this.reasoningText;
    }
    if (calls.length > 0) {
      msg.tool_calls = calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    }
    return msg;
  }

  private showsSeparateReasoning(): boolean {
    return this.opts.returnReasoning && this.opts.reasoningFormat === "separate";
  }

  private validCalls(): Call[] {
    return [...this.calls.values()].filter((c) => !c.void);
  }

  private toDeltas(events: ReasoningEvent[], final: boolean): ChatDelta[] {
    const deltas: ChatDelta[] = [];
    for (const ev of events) {
      if (ev.type === "reasoning") this.onReasoning(ev.text, deltas);
      else {
        this.closeInline(deltas);
        this.onAnswer(this.tools ? this.tools.push(ev.text) : [{ type: "content", text: ev.text }], deltas);
      }
    }
    if (this.thoughts.phase === "content") this.closeInline(deltas);
    if (final && this.tools) this.onAnswer(this.tools.flush(), deltas);
    return deltas;
  }

  private onReasoning(text: string, deltas: ChatDelta[]): void {
    this.reasoning += text;
    if (!this.opts.returnReasoning) return;
    if (this.opts.reasoningFormat === "inline") {
      const prefix = this.inline === "closed" ? INLINE_OPEN : "";
      this.inline = "open";
      this.addContent(prefix + text, deltas);
    } else {
      deltas.push(this.opts.reasoningAlias ? { reasoning_content: text, reasoning: text } : { reasoning_content: text });
    }
  }

  /** Inline reasoning is closed where the model closed its thought. */
  private closeInline(deltas: ChatDelta[]): void {
    if (this.inline !== "open") return;
    this.inline = "done";
    this.addContent(INLINE_CLOSE, deltas);
  }

  private onAnswer(events: ToolCallEvent[], deltas: ChatDelta[]): void {
    for (const ev of events) {
      switch (ev.type) {
        case "content":
          this.addContent(ev.text, deltas);
          break;
        case "tool_call_start": {
          // parallel_tool_calls: false keeps the first call only, as vLLM does.
          if (this.opts.toolCalls && !this.opts.toolCalls.parallel && this.calls.size > 0) break;
          const call: Call = { id: toolCallId(), name: ev.name, arguments: "", void: false };
          this.calls.set(ev.index, call);
          deltas.push({ tool_calls: [{ index: ev.index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] });
          break;
        }
        case "tool_call_arguments": {
          const call = this.calls.get(ev.index);
          if (!call) break;
          call.arguments += ev.fragment;
          deltas.push({ tool_calls: [{ index: ev.index, function: { arguments: ev.fragment } }] });
          break;
        }
        case "tool_call_end":
          break;
        case "invalid": {
          // A block that is not a usable call is the model's text. If it was already announced
          // while streaming, the client has seen part of it; the final message leaves it out.
          const call = ev.index === undefined ? undefined : this.calls.get(ev.index);
          if (call) call.void = true;
          this.addContent(ev.raw, deltas);
          break;
        }
      }
    }
  }

  private addContent(text: string, deltas: ChatDelta[]): void {
    if (!text) return;
    this.content += text;
    const last = deltas.at(-1);
    if (last && last.content !== undefined && last.content !== null && Object.keys(last).length === 1) last.content += text;
    else deltas.push({ content: text });
  }
}
