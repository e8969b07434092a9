import { JsonObjectScanner } from "./json-object-scanner.js";
import { partialMarkerLength, trailingRunLength } from "./holdback.js";

/**
 * What the streaming layer turns into OpenAI deltas. A call is announced only once its name is
 * complete, so the name is sent exactly once; its `arguments` JSON then streams as fragments.
 */
export type ToolCallEvent =
  | { readonly type: "content"; readonly text: string }
  | { readonly type: "tool_call_start"; readonly index: number; readonly name: string }
  | { readonly type: "tool_call_arguments"; readonly index: number; readonly fragment: string }
  | { readonly type: "tool_call_end"; readonly index: number }
  /**
   * A `<tool_call>` block that is not a usable call (malformed JSON, no string `name`), with its
   * raw text so the caller can return it as content. `index` is set when `tool_call_start` was
   * already emitted for it: that announced call is void, and its index is not reused.
   */
  | { readonly type: "invalid"; readonly raw: string; readonly index?: number };

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

const isWhitespace = (char: string): boolean => /\s/.test(char);

/**
 * Finds Qwen3 / Hermes tool calls, `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`,
 * in content as it streams. Text before, between and after calls is content, except the
 * whitespace right around a call, which is only layout.
 */
export class ToolCallParser {
  /** Text received but not yet handled: a possible partial marker, or whitespace before one. */
  #held = "";
  #call: PendingCall | undefined;
  #nextIndex = 0;
  #afterCall = false;

  push(text: string): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    this.#held += text;
    this.#drain(events, false);
    return events;
  }

  /** Ends the output: an unclosed call still counts if its JSON is complete and valid. */
  flush(): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    this.#drain(events, true);
    return events;
  }

  #drain(events: ToolCallEvent[], final: boolean): void {
    for (;;) {
      if (this.#call) {
        const call = this.#call;
        const close = this.#held.indexOf(CLOSE);
        if (close === -1 && !final) {
          const keep = partialMarkerLength(this.#held, CLOSE);
          call.feed(this.#held.slice(0, this.#held.length - keep), events);
          this.#held = this.#held.slice(this.#held.length - keep);
          return;
        }
        // At the end of the output a partial `</tool_call>` is the unfinished closing tag.
        const bodyEnd = close === -1 ? this.#held.length - partialMarkerLength(this.#held, CLOSE) : close;
        const closeEnd = close === -1 ? this.#held.length : close + CLOSE.length;
        call.feed(this.#held.slice(0, bodyEnd), events);
        if (call.finish(this.#held.slice(bodyEnd, closeEnd), events)) this.#nextIndex++;
        this.#held = this.#held.slice(closeEnd);
        this.#call = undefined;
        this.#afterCall = true;
        continue;
      }
      if (this.#afterCall) {
        this.#held = this.#held.trimStart();
        if (this.#held === "") return;
        this.#afterCall = false;
      }
      const open = this.#held.indexOf(OPEN);
      if (open !== -1) {
        appendContent(events, this.#held.slice(0, open).trimEnd());
        this.#held = this.#held.slice(open + OPEN.length);
        this.#call = new PendingCall(this.#nextIndex);
        continue;
      }
      const partial = final ? 0 : partialMarkerLength(this.#held, OPEN);
      const keep = final ? 0 : partial + trailingRunLength(this.#held, this.#held.length - partial, isWhitespace);
      appendContent(events, this.#held.slice(0, this.#held.length - keep));
      this.#held = this.#held.slice(this.#held.length - keep);
      return;
    }
  }
}

/** The body of one `<tool_call>` block, between the markers. */
class PendingCall {
  readonly #index: number;
  readonly #scanner = new JsonObjectScanner();
  #body = "";
  /** The top-level key whose value is being read, when it is one the call needs. */
  #key: "name" | "arguments" | undefined;
  readonly #keysSeen = new Set<string>();
  /** `name` or `arguments` given twice: JSON.parse would keep the last, which may not be what was streamed. */
  #duplicateKey = false;
  #nameText = "";
  #started = false;
  /** Raw JSON text of the `arguments` value so far, and how much of it was emitted. */
  #argumentsText = "";
  #argumentsSent = 0;

  constructor(index: number) {
    this.#index = index;
  }

  feed(text: string, events: ToolCallEvent[]): void {
    this.#body += text;
    for (const event of this.#scanner.push(text)) {
      switch (event.type) {
        case "key":
          this.#key = this.#watchKey(event.key);
          break;
        case "value":
          if (this.#key === "name") this.#nameText += event.text;
          else if (this.#key === "arguments") this.#argumentsText += event.text;
          break;
        case "value_end": {
          const name = this.#key === "name" ? parseName(this.#nameText) : undefined;
          if (name !== undefined) this.#start(name, events);
          this.#key = undefined;
          break;
        }
        case "object_end":
          break;
      }
    }
    this.#sendArguments(events);
  }

  /**
   * Ends the block; `closing` is as much of the closing tag as arrived. Returns whether the call
   * used up its index, i.e. it was announced.
   */
  finish(closing: string, events: ToolCallEvent[]): boolean {
    const call = this.#duplicateKey ? undefined : interpretCall(this.#body);
    if (call === undefined) {
      const raw = OPEN + this.#body + closing;
      events.push(this.#started ? { type: "invalid", raw, index: this.#index } : { type: "invalid", raw });
      return this.#started;
    }
    this.#start(call.name, events);
    if (typeof call.arguments === "string") {
      // Some models encode the arguments object as a JSON string; OpenAI's field is that string.
      appendArguments(events, this.#index, call.arguments === "" ? "{}" : call.arguments);
    } else if (call.arguments === null) {
      appendArguments(events, this.#index, "{}");
    } else {
      this.#sendArguments(events);
    }
    events.push({ type: "tool_call_end", index: this.#index });
    return true;
  }

  #watchKey(key: string): "name" | "arguments" | undefined {
    // "parameters" is the name some models (and older Hermes prompts) use for the arguments.
    const watched = key === "name" ? "name" : key === "arguments" || key === "parameters" ? "arguments" : undefined;
    if (watched === undefined) return undefined;
    if (this.#keysSeen.has(watched)) {
      this.#duplicateKey = true;
      return undefined;
    }
    this.#keysSeen.add(watched);
    return watched;
  }

  #start(name: string, events: ToolCallEvent[]): void {
    if (this.#started || this.#duplicateKey) return;
    this.#started = true;
    events.push({ type: "tool_call_start", index: this.#index, name });
  }

  /** Streams an `arguments` object as it arrives; other forms are only known whole, at the end. */
  #sendArguments(events: ToolCallEvent[]): void {
    if (!this.#started || this.#duplicateKey || !this.#argumentsText.startsWith("{")) return;
    appendArguments(events, this.#index, this.#argumentsText.slice(this.#argumentsSent));
    this.#argumentsSent = this.#argumentsText.length;
  }
}

/** A complete, usable call: a JSON object with a non-empty string `name`. */
function interpretCall(body: string): { name: string; arguments: Record<string, unknown> | string | null } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || typeof value["name"] !== "string" || value["name"] === "") return undefined;
  const args = "arguments" in value ? value["arguments"] : value["parameters"];
  if (args === undefined || args === null) return { name: value["name"], arguments: null };
  if (typeof args === "string" || isPlainObject(args)) return { name: value["name"], arguments: args };
  return undefined;
}

function parseName(text: string): string | undefined {
  try {
    const name: unknown = JSON.parse(text);
    return typeof name === "string" && name !== "" ? name : undefined;
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function appendContent(events: ToolCallEvent[], text: string): void {
  if (text === "") return;
  const last = events.at(-1);
  if (last?.type === "content") events[events.length - 1] = { type: "content", text: last.text + text };
  else events.push({ type: "content", text });
}

function appendArguments(events: ToolCallEvent[], index: number, fragment: string): void {
  if (fragment === "") return;
  const last = events.at(-1);
  if (last?.type === "tool_call_arguments" && last.index === index) {
    events[events.length - 1] = { type: "tool_call_arguments", index, fragment: last.fragment + fragment };
  } else {
    events.push({ type: "tool_call_arguments", index, fragment });
  }
}
