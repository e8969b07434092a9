/**
 * Lines up the log-probabilities of generated tokens with the text a generation emits: each
 * text event carries the entries of the tokens whose text starts inside the text emitted so far,
 * so tokens cut off by a stop string are never reported, and the tokens' strings concatenate to
 * the emitted text. Tokens of a think block (and the blank line after it) are left out: logprobs
 * describe the answer.
 */
import type { TokenLogprob, TokenText } from "./types.js";
import type { RawLogprobs } from "./logprobs.js";

interface Entry {
  /** Where the token's text starts in the generated text. */
  start: number;
  value: TokenLogprob;
}

const tokenText = (token: string, logprob: number): TokenText => ({ token, bytes: [...Buffer.from(token, "utf8")], logprob });

export class TokenLogprobs {
  private generatedLength = 0;
  private emittedLength = 0;
  /** Tokens the thought tracker has not placed yet (the pieces of a possible `<think>`). */
  private undecided: Entry[] = [];
  private answer: Entry[] = [];

  /** `pieceOf` renders an alternative token on its own. */
  constructor(private readonly pieceOf: (token: number) => string) {}

  /**
   * One generated token: `text` is what it added to the output (a token that ends a multi-byte
   * character carries the whole character, the ones before it carry ""), `raw` its
   * log-probabilities (none for tokens the engine injected), `place` where the thought tracker put it.
   */
  add(text: string, raw: RawLogprobs | undefined, place: "reasoning" | "layout" | "answer" | "undecided"): void {
    const start = this.generatedLength;
    this.generatedLength += text.length;
    const entry = raw && {
      start,
      value: { ...tokenText(text, raw.logprob), top: raw.top.map((t) => tokenText(this.pieceOf(t.token), t.logprob)) },
    };
    if (place === "undecided") {
      if (entry) this.undecided.push(entry);
      return;
    }
    const decided = this.undecided.splice(0);
    if (place === "reasoning" || place === "layout") return;
    this.answer.push(...decided);
    if (entry) this.answer.push(entry);
  }

  /** The output ended: tokens still undecided were never a think block. */
  end(): void {
    this.answer.push(...this.undecided.splice(0));
  }

  /** Entries waiting for their text to be emitted. */
  get pending(): boolean {
    return this.answer.length > 0;
  }

  /** `length` more characters were emitted: the entries of the tokens that start within the emitted text. */
  emitted(length: number): TokenLogprob[] {
    this.emittedLength += length;
    const beyond = this.answer.findIndex((e) => e.start >= this.emittedLength);
    return this.answer.splice(0, beyond === -1 ? this.answer.length : beyond).map((e) => e.value);
  }
}
