/**
 * Turns one choice's text stream into OpenAI deltas (streaming) and a final message
 * (non-streaming): reasoning split from content by the chat/ parsers.
 */
import { ReasoningParser } from "../chat/reasoning-parser.js";
import type { ChatDelta, ChatMessageOut, WireFinishReason } from "./chunks.js";
import type { FinishReason } from "../engine/types.js";

export interface AssemblerOptions {
  /** The prompt asked the model to think (Qwen3 enable_thinking). */
  thinking: boolean;
  /** The prompt itself opened `<think>`. */
  startsInReasoning: boolean;
}

export class ChoiceAssembler {
  private readonly reasoning: ReasoningParser;
  private content = "";
  private reasoningText = "";
  /** Completion tokens generated while the model was reasoning. */
  reasoningTokens = 0;

  constructor(opts: AssemblerOptions) {
    this.reasoning = new ReasoningParser({ enabled: opts.thinking, startsInReasoning: opts.startsInReasoning });
  }

  /** Feeds generated text; `tokens` is how many completion tokens produced it. */
  push(text: string, tokens: number): ChatDelta[] {
    const before = this.reasoning.phase;
    const deltas = this.toDeltas(this.reasoning.push(text));
    // Tokens that opened, continued or closed the think block are reasoning tokens.
    if (before === "reasoning" || this.reasoning.phase === "reasoning") this.reasoningTokens += tokens;
    return deltas;
  }

  finish(): ChatDelta[] {
    return this.toDeltas(this.reasoning.flush());
  }

  finishReason(engineReason: FinishReason): WireFinishReason {
    return engineReason;
  }

  message(): ChatMessageOut {
    const msg: ChatMessageOut = { role: "assistant", content: this.content };
    if (this.reasoningText) msg.reasoning_content = this.reasoningText;
    return msg;
  }

  private toDeltas(events: ReturnType<ReasoningParser["push"]>): ChatDelta[] {
    const deltas: ChatDelta[] = [];
    for (const ev of events) {
      if (!ev.text) continue;
      if (ev.type === "reasoning") {
        this.reasoningText += ev.text;
        deltas.push({ reasoning_content: ev.text });
      } else {
        this.content += ev.text;
        deltas.push({ content: ev.text });
      }
    }
    return deltas;
  }
}
