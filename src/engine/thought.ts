/**
 * Follows the model's think block token by token, where the tokens are produced: which tokens are
 * reasoning, when the answer starts (a grammar applies from there), and when the thinking budget
 * is spent. The block is found in the decoded text, so `</think>` may be one special token or
 * several ordinary ones.
 */
import { ReasoningParser } from "../chat/reasoning-parser.js";

export interface ThoughtOptions {
  /** The prompt asked the model to think. */
  readonly thinking: boolean;
  /** The prompt itself ended inside an open `<think>`. */
  readonly startsInReasoning: boolean;
  /** Tokens the thought may use before it is closed for the model; 0 = unlimited. */
  readonly budget: number;
}

export class ThoughtTracker {
  readonly #parser: ReasoningParser;
  readonly #budget: number;
  /** Tokens generated inside the open think block. */
  #thoughtTokens = 0;
  #reasoningTokens = 0;
  /** Tokens seen before the output showed whether it opens a thought (e.g. the pieces of a split `<think>`). */
  #undecidedTokens = 0;
  /** A think block was opened, by the prompt or by the model. */
  #opened: boolean;
  /** The thought just closed: newlines now are layout the parser drops, not answer. */
  #afterThought = false;

  constructor(options: ThoughtOptions) {
    this.#parser = new ReasoningParser({ enabled: options.thinking, startsInReasoning: options.startsInReasoning });
    this.#budget = options.budget;
    this.#opened = this.#parser.phase === "reasoning";
  }

  /** Tokens that opened, continued or closed the think block (usage.reasoning_tokens). */
  get reasoningTokens(): number {
    return this.#reasoningTokens;
  }

  /** The think block is closed (or never opened): what follows is the answer. */
  get answering(): boolean {
    return this.#parser.phase === "content";
  }

  /** The output has not yet shown whether it opens a thought (the prompt left that to the model). */
  get undecided(): boolean {
    return this.#parser.phase === "start";
  }

  /** The answer, if any, came after a thought. */
  get thoughtOpened(): boolean {
    return this.#opened;
  }

  /** The thought has used its budget: the next token must not extend it. */
  get budgetSpent(): boolean {
    return this.#budget > 0 && this.#parser.phase === "reasoning" && this.#thoughtTokens >= this.#budget;
  }

  /**
   * Records one generated token; `text` is what it added to the decoded output (possibly "").
   * Returns where the token belongs; an undecided token goes wherever the next decided one does,
   * and "layout" is the blank line between the thought and the answer.
   */
  observe(text: string): "reasoning" | "layout" | "answer" | "undecided" {
    const before = this.#parser.phase;
    // Only the phase matters here; the API layer splits the text for the client.
    this.#parser.push(text);
    const after = this.#parser.phase;
    if (after === "reasoning") this.#opened = true;
    if (before === "reasoning") this.#thoughtTokens++;
    if (after === "start") {
      this.#undecidedTokens++;
      return "undecided";
    }
    if (before === "start") {
      const opened = after === "reasoning";
      if (opened) this.#reasoningTokens += this.#undecidedTokens + 1;
      this.#undecidedTokens = 0;
      return opened ? "reasoning" : "answer";
    }
    if (before === "reasoning" || after === "reasoning") {
      this.#reasoningTokens++;
      this.#afterThought = after === "content";
      return "reasoning";
    }
    if (this.#afterThought) {
      if (/^\n*$/.test(text)) return "layout";
      this.#afterThought = false;
    }
    return "answer";
  }
}
