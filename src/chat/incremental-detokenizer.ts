import { trailingRunLength } from "./holdback.js";

/**
 * Decodes token ids to text, special tokens included (the parsers downstream look for `<think>`
 * and `<tool_call>` in the text). Bytes that do not form complete UTF-8 come back as U+FFFD.
 */
export type Detokenize = (tokens: readonly number[]) => string;

/**
 * Tokens kept as left context once their text is emitted. Some decoders render a token
 * differently at the start of a sequence (SentencePiece drops the leading space), so a token is
 * always decoded after a few of its predecessors, and the window stays small enough that each
 * step costs O(1) instead of re-decoding the whole output.
 */
const CONTEXT_TOKENS = 4;

const isReplacementChar = (char: string): boolean => char === "\uFFFD";

/** Turns a stream of token ids into a stream of text without ever cutting a character in two. */
export class IncrementalDetokenizer {
  readonly #detokenize: Detokenize;
  /** Recent tokens: left context, then tokens whose text is not fully emitted yet. */
  #window: number[] = [];
  /** How many characters of the window's decoded text were already returned. */
  #emitted = 0;

  constructor(detokenize: Detokenize) {
    this.#detokenize = detokenize;
  }

  /** Adds tokens and returns the text they completed (possibly empty). */
  push(tokens: number | readonly number[]): string {
    if (typeof tokens === "number") this.#window.push(tokens);
    else this.#window.push(...tokens);
    return this.#drain(false);
  }

  /** Returns whatever is still held back, broken characters included: the output has ended. */
  flush(): string {
    return this.#drain(true);
  }

  #drain(final: boolean): string {
    const text = this.#detokenize(this.#window);
    // A trailing U+FFFD is usually a multi-byte character whose remaining bytes are in tokens not
    // generated yet; decoding with them later turns it into the real character.
    const stable = final ? text.length : text.length - trailingRunLength(text, text.length, isReplacementChar);
    const out = stable > this.#emitted ? text.slice(this.#emitted, stable) : "";
    this.#emitted = Math.max(this.#emitted, stable);
    // The window can only be cut where its text is complete, or the cut would split a character.
    if (stable === text.length && this.#window.length > CONTEXT_TOKENS) {
      this.#window = this.#window.slice(-CONTEXT_TOKENS);
      this.#emitted = this.#detokenize(this.#window).length;
    }
    return out;
  }
}
