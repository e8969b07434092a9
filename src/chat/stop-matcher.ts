import { partialMarkerLength } from "./holdback.js";

export interface StopMatchResult {
  /** Text that can be sent to the client: it is not, and cannot become, part of a stop string. */
  readonly text: string;
  /** A stop string was found: generation should end, and nothing more will be returned. */
  readonly stopped: boolean;
  /** The stop string found (Anthropic's `stop_sequence` names it). */
  readonly matched?: string;
}

/**
 * Finds the OpenAI `stop` strings in text that arrives in pieces. The stop string and anything
 * after it are never returned; text that could be the start of one is held until the next piece
 * settles it, so a stop string split across pieces is still caught.
 */
export class StopMatcher {
  readonly #stops: readonly string[];
  #held = "";
  #stopped = false;

  constructor(stops: readonly string[]) {
    // An empty stop string would match everywhere and end every generation before it starts.
    this.#stops = stops.filter((stop) => stop.length > 0);
  }

  push(piece: string): StopMatchResult {
    if (this.#stopped) return { text: "", stopped: true };
    const text = this.#held + piece;
    const match = this.#earliestMatch(text);
    if (match !== undefined) {
      this.#stopped = true;
      this.#held = "";
      return { text: text.slice(0, match.start), stopped: true, matched: match.stop };
    }
    const hold = Math.max(0, ...this.#stops.map((stop) => partialMarkerLength(text, stop)));
    this.#held = text.slice(text.length - hold);
    return { text: text.slice(0, text.length - hold), stopped: false };
  }

  /** Releases the held text once the output has ended without completing a stop string. */
  flush(): string {
    const held = this.#held;
    this.#held = "";
    return held;
  }

  /**
   * Where the stop string that completes first begins. Completing first (not starting first) is
   * what makes the answer independent of how the text was split: fed one character at a time,
   * that is the match seen first. Among matches ending together, the longest wins.
   */
  #earliestMatch(text: string): { start: number; stop: string } | undefined {
    let best: { start: number; end: number; stop: string } | undefined;
    for (const stop of this.#stops) {
      const start = text.indexOf(stop);
      if (start === -1) continue;
      const end = start + stop.length;
      if (best === undefined || end < best.end || (end === best.end && start < best.start)) best = { start, end, stop };
    }
    return best;
  }
}
