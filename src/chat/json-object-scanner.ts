/**
 * What a top-level JSON object looks like so far, as its text arrives in pieces. Values are
 * reported as raw JSON text, so a caller can forward one verbatim while it is still streaming.
 */
export type ObjectScanEvent =
  | { readonly type: "key"; readonly key: string }
  | { readonly type: "value"; readonly text: string }
  | { readonly type: "value_end" }
  | { readonly type: "object_end" };

type State =
  | "before_object"
  | "before_key"
  | "in_key"
  | "after_key"
  | "before_value"
  | "in_value"
  | "after_value"
  | "done"
  | "failed";

const isJsonWhitespace = (char: string): boolean => char === " " || char === "\n" || char === "\r" || char === "\t";

/**
 * Follows the top level of one JSON object character by character: its keys, and where each
 * value starts and ends. It checks only the structure it needs to find those boundaries; a
 * caller that needs the text to be valid JSON still parses the complete text.
 */
export class JsonObjectScanner {
  #state: State = "before_object";
  #keyText = "";
  /** Inside a string (in a key, or anywhere within a value), the next character is escaped. */
  #escaped = false;
  #value: { kind: "string" | "container" | "literal"; depth: number; inString: boolean } = {
    kind: "literal",
    depth: 0,
    inString: false,
  };

  /** false once the text cannot be a single JSON object any more. */
  get ok(): boolean {
    return this.#state !== "failed";
  }

  push(text: string): ObjectScanEvent[] {
    const events: ObjectScanEvent[] = [];
    let valueStart = this.#state === "in_value" ? 0 : -1;
    for (let i = 0; i < text.length && this.#state !== "failed"; i++) {
      const char = text.charAt(i);
      switch (this.#state) {
        case "before_object":
          if (!isJsonWhitespace(char)) this.#state = char === "{" ? "before_key" : "failed";
          break;
        case "before_key":
          if (char === '"') {
            this.#state = "in_key";
            this.#keyText = "";
          } else if (char === "}") {
            this.#state = "done";
            events.push({ type: "object_end" });
          } else if (!isJsonWhitespace(char)) {
            this.#state = "failed";
          }
          break;
        case "in_key":
          if (this.#escaped || char === "\\") {
            this.#escaped = !this.#escaped;
            this.#keyText += char;
          } else if (char === '"') {
            const key = parseJsonString(this.#keyText);
            if (key === undefined) {
              this.#state = "failed";
            } else {
              this.#state = "after_key";
              events.push({ type: "key", key });
            }
          } else {
            this.#keyText += char;
          }
          break;
        case "after_key":
          if (!isJsonWhitespace(char)) this.#state = char === ":" ? "before_value" : "failed";
          break;
        case "before_value":
          if (isJsonWhitespace(char)) break;
          if (char === "," || char === "}" || char === "]" || char === ":") {
            this.#state = "failed";
            break;
          }
          this.#state = "in_value";
          this.#value =
            char === '"'
              ? { kind: "string", depth: 0, inString: true }
              : char === "{" || char === "["
                ? { kind: "container", depth: 1, inString: false }
                : { kind: "literal", depth: 0, inString: false };
          valueStart = i;
          break;
        case "in_value": {
          const end = this.#valueEnd(char);
          if (end === undefined) break;
          const stop = end === "after" ? i + 1 : i;
          if (stop > valueStart) events.push({ type: "value", text: text.slice(valueStart, stop) });
          events.push({ type: "value_end" });
          valueStart = -1;
          this.#state = "after_value";
          // The delimiter that ended a number or literal belongs to the object: read it again.
          if (end === "before") i--;
          break;
        }
        case "after_value":
          if (char === ",") {
            this.#state = "before_key";
          } else if (char === "}") {
            this.#state = "done";
            events.push({ type: "object_end" });
          } else if (!isJsonWhitespace(char)) {
            this.#state = "failed";
          }
          break;
        case "done":
          if (!isJsonWhitespace(char)) this.#state = "failed";
          break;
      }
    }
    if (this.#state === "in_value" && valueStart < text.length) {
      events.push({ type: "value", text: text.slice(valueStart) });
    }
    return events;
  }

  /**
   * Whether `char`, the next character of the current value, ends it: "after" when the value
   * includes it (closing quote or bracket), "before" when it is the delimiter after a literal.
   */
  #valueEnd(char: string): "after" | "before" | undefined {
    const value = this.#value;
    if (value.inString) {
      if (this.#escaped || char === "\\") this.#escaped = !this.#escaped;
      else if (char === '"') value.inString = false;
      return value.kind === "string" && !value.inString ? "after" : undefined;
    }
    if (value.kind === "literal") {
      return char === "," || char === "}" || char === "]" || isJsonWhitespace(char) ? "before" : undefined;
    }
    if (char === '"') value.inString = true;
    else if (char === "{" || char === "[") value.depth++;
    else if (char === "}" || char === "]") value.depth--;
    return value.depth === 0 ? "after" : undefined;
  }
}

function parseJsonString(body: string): string | undefined {
  try {
    const value: unknown = JSON.parse(`"${body}"`);
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
