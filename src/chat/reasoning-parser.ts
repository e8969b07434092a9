import { partialMarkerLength, trailingRunLength } from "./holdback.js";

export type ReasoningEvent =
  | { readonly type: "reasoning"; readonly text: string }
  | { readonly type: "content"; readonly text: string };

export interface ReasoningParserOptions {
  /**
   * false when the prompt already holds a closed `<think>\n\n</think>\n\n` (thinking switched
   * off): the model answers directly, so everything is content, even a literal `<think>`.
   */
  readonly enabled: boolean;
  /** The rendered prompt ended inside an open `<think>`: the output starts as reasoning. */
  readonly startsInReasoning: boolean;
}

const OPEN = "<think>";
const CLOSE = "</think>";

const isNewline = (char: string): boolean => char === "\n";

/**
 * Splits Qwen3-style output, `<think>\nreasoning\n</think>\n\ncontent`, into reasoning and content
 * as the text streams in. Only a `<think>` at the very start of the output (after whitespace)
 * opens reasoning: later ones are content the model is quoting. The newlines the model puts
 * around its reasoning are layout, not text, and are dropped as llama.cpp and vLLM do.
 */
export class ReasoningParser {
  #phase: "start" | "reasoning" | "content";
  /** Text received but not yet emitted: a possible partial marker, or newlines it may swallow. */
  #held = "";
  /** Newlines at this point are layout: right after `<think>` or right after `</think>`. */
  #dropLeadingNewlines: boolean;

  constructor(options: ReasoningParserOptions) {
    this.#phase = !options.enabled ? "content" : options.startsInReasoning ? "reasoning" : "start";
    this.#dropLeadingNewlines = this.#phase === "reasoning";
  }

  /** "start" until the output shows whether it opens with `<think>`. */
  get phase(): "start" | "reasoning" | "content" {
    return this.#phase;
  }

  push(text: string): ReasoningEvent[] {
    const events: ReasoningEvent[] = [];
    this.#held += text;
    this.#drain(events, false);
    return events;
  }

  /**
   * Ends the output. Held text is released as what it would have been: output cut off inside
   * the think block (e.g. by max_tokens) is reasoning, a partial `<think>` at the start is content.
   */
  flush(): ReasoningEvent[] {
    const events: ReasoningEvent[] = [];
    this.#drain(events, true);
    return events;
  }

  #drain(events: ReasoningEvent[], final: boolean): void {
    for (;;) {
      if (this.#dropLeadingNewlines) {
        const text = this.#held.replace(/^\n+/, "");
        this.#held = text;
        if (text === "") return;
        this.#dropLeadingNewlines = false;
      }
      switch (this.#phase) {
        case "start": {
          const rest = this.#held.trimStart();
          if (rest.startsWith(OPEN)) {
            this.#held = rest.slice(OPEN.length);
            this.#phase = "reasoning";
            this.#dropLeadingNewlines = true;
            continue;
          }
          if (!final && OPEN.startsWith(rest)) return;
          this.#phase = "content";
          continue;
        }
        case "reasoning": {
          const close = this.#held.indexOf(CLOSE);
          if (close !== -1) {
            append(events, "reasoning", this.#held.slice(0, close).replace(/\n+$/, ""));
            this.#held = this.#held.slice(close + CLOSE.length);
            this.#phase = "content";
            this.#dropLeadingNewlines = true;
            continue;
          }
          const partial = final ? 0 : partialMarkerLength(this.#held, CLOSE);
          const keep = final ? 0 : partial + trailingRunLength(this.#held, this.#held.length - partial, isNewline);
          append(events, "reasoning", this.#held.slice(0, this.#held.length - keep));
          this.#held = this.#held.slice(this.#held.length - keep);
          return;
        }
        case "content":
          append(events, "content", this.#held);
          this.#held = "";
          return;
      }
    }
  }
}

/** Adds text to the event list, merging with the previous event of the same type. */
function append(events: ReasoningEvent[], type: ReasoningEvent["type"], text: string): void {
  if (text === "") return;
  const last = events.at(-1);
  if (last?.type === type) events[events.length - 1] = { type, text: last.text + text };
  else events.push({ type, text });
}
