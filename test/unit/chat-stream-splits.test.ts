/**
 * Text reaches the parsers in pieces that end anywhere (tokens, then whatever the detokenizer and
 * stop matcher release). Whatever the split, the result must be the same as for the whole text.
 */
import { describe, expect, it } from "vitest";
import { JsonObjectScanner, type ObjectScanEvent } from "../../src/chat/json-object-scanner.js";
import { ReasoningParser, type ReasoningEvent, type ReasoningParserOptions } from "../../src/chat/reasoning-parser.js";
import { StopMatcher } from "../../src/chat/stop-matcher.js";
import { ToolCallParser, type ToolCallEvent } from "../../src/chat/tool-call-parser.js";

/** Seeded, so a failure reproduces. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Whole, one character at a time, every cut into two pieces, every cut into three (short texts),
 * and random chunkings. Cuts fall between code points: text pieces never split a surrogate pair.
 */
function* chunkings(text: string): Generator<string[]> {
  const chars = Array.from(text);
  const join = (from: number, to?: number) => chars.slice(from, to).join("");
  yield [text];
  yield chars;
  for (let i = 1; i < chars.length; i++) {
    yield [join(0, i), join(i)];
    if (chars.length <= 64) for (let j = i + 1; j < chars.length; j++) yield [join(0, i), join(i, j), join(j)];
  }
  const next = random(chars.length);
  for (let round = 0; round < 200; round++) {
    const pieces: string[] = [];
    for (let at = 0; at < chars.length; ) {
      const size = 1 + Math.floor(next() * 8);
      pieces.push(join(at, at + size));
      at += size;
    }
    yield pieces;
  }
}

/** Merges neighbouring events that a different split could have delivered together. */
function mergeText<E extends { type: string }>(events: E[], key: (event: E) => string | undefined, join: (a: E, b: E) => E): E[] {
  const merged: E[] = [];
  for (const event of events) {
    const last = merged.at(-1);
    const lastKey = last && key(last);
    if (last && lastKey !== undefined && lastKey === key(event)) merged[merged.length - 1] = join(last, event);
    else merged.push(event);
  }
  return merged;
}

function expectSameForEverySplit<R>(text: string, run: (pieces: string[]) => R): void {
  const expected = run([text]);
  for (const pieces of chunkings(text)) {
    const actual = run(pieces);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) expect({ pieces, actual }).toEqual({ pieces, actual: expected });
  }
}

const runStops = (stops: string[]) => (pieces: string[]) => {
  const matcher = new StopMatcher(stops);
  let text = "";
  for (const piece of pieces) {
    const result = matcher.push(piece);
    text += result.text;
    if (result.stopped) return { text, stopped: true };
  }
  return { text: text + matcher.flush(), stopped: false };
};

const runReasoning = (options: ReasoningParserOptions) => (pieces: string[]) => {
  const parser = new ReasoningParser(options);
  const events = [...pieces.flatMap((piece) => parser.push(piece)), ...parser.flush()];
  return mergeText<ReasoningEvent>(events, (e) => e.type, (a, b) => ({ type: a.type, text: a.text + b.text }));
};

function mergeToolEvents(events: ToolCallEvent[]): ToolCallEvent[] {
  return mergeText<ToolCallEvent>(
    events,
    (e) => (e.type === "content" ? "content" : e.type === "tool_call_arguments" ? `arguments ${e.index}` : undefined),
    (a, b) =>
      a.type === "content" && b.type === "content"
        ? { type: "content", text: a.text + b.text }
        : a.type === "tool_call_arguments" && b.type === "tool_call_arguments"
          ? { type: "tool_call_arguments", index: a.index, fragment: a.fragment + b.fragment }
          : a,
  );
}

const runToolCalls = (pieces: string[]) => {
  const parser = new ToolCallParser();
  return mergeToolEvents([...pieces.flatMap((piece) => parser.push(piece)), ...parser.flush()]);
};

const runScanner = (pieces: string[]) => {
  const scanner = new JsonObjectScanner();
  const events = pieces.flatMap((piece) => scanner.push(piece));
  return {
    ok: scanner.ok,
    events: mergeText<ObjectScanEvent>(events, (e) => (e.type === "value" ? "value" : undefined), (a, b) =>
      a.type === "value" && b.type === "value" ? { type: "value", text: a.text + b.text } : a,
    ),
  };
};

const TOOL_OUTPUTS = [
  'Let me look.\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Zürich", "days": 3}}\n</tool_call>',
  '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", "parameters": {"q": "x\\"}</tool_call>{"}}\n</tool_call>\nDone 🎉',
  '<tool_call>{"arguments": {"nested": {"list": [1, 2, {"k": "v"}]}, "s": "a\\\\"}, "name": "late"}</tool_call> tail',
  '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>',
  '<tool_call>\n{"name": "f", "arguments": {"a": }\n</tool_call>\n<tool_call>{"name": "g"}</tool_call>',
  'text <tool_call>{"name": "f", "arguments": {"x": 1}}}</tool_call> <tool_call>',
  '<tool_call>\n{"name": "cut", "arguments": {"x": 1}}\n</tool_',
  "a < b <tool <tool_call nope </tool_call> and 1 </ 2",
];

describe("every split of the input gives the same result", () => {
  it.each([
    [["</s>", "\n\nUser:"], "answer</s"],
    [["</s>", "\n\nUser:"], "answer\n\nUser: next</s>"],
    [["abcd", "c", "bcx"], "xxabcabcd"],
    [["🎉"], "party 🎉 time"],
    [["ab", "abab"], "aabababab"],
  ])("stop matcher %j on %j", (stops, text) => {
    expectSameForEverySplit(text, runStops(stops));
  });

  it.each([
    "<think>\nLet me think about 2+2.\n\nIt is 4.\n</think>\n\nThe answer is **4**.",
    "\n <think>\n\n</think>\n\n",
    "<think>a </thin </think> b</think>c\n\n",
    "<think>\nnever closed\n\n",
    "no thinking at all\n",
    "<th",
  ])("reasoning parser on %j", (text) => {
    expectSameForEverySplit(text, runReasoning({ enabled: true, startsInReasoning: false }));
    expectSameForEverySplit(text, runReasoning({ enabled: true, startsInReasoning: true }));
    expectSameForEverySplit(text, runReasoning({ enabled: false, startsInReasoning: false }));
  });

  it.each(TOOL_OUTPUTS)("tool-call parser on %j", (text) => {
    expectSameForEverySplit(text, runToolCalls);
  });

  it.each([
    '{"name": "f", "arguments": {"a": "}{\\"", "b": [true, null, -1.5e3]}, "n": 12}',
    ' { "k" : "v" , "e" : {} , "t" : true } ',
    '{"a": 1} trailing',
    '{"a" 1}',
  ])("JSON object scanner on %j", (text) => {
    expectSameForEverySplit(text, runScanner);
  });

  it("reasoning parser feeding the tool-call parser", () => {
    const text = "<think>\nI should call the tool.\n</think>\n\n" + TOOL_OUTPUTS[0];
    expectSameForEverySplit(text, (pieces) => {
      const reasoning = new ReasoningParser({ enabled: true, startsInReasoning: false });
      const tools = new ToolCallParser();
      let thought = "";
      const events: ToolCallEvent[] = [];
      const route = (out: ReasoningEvent[]) => {
        for (const event of out) {
          if (event.type === "reasoning") thought += event.text;
          else events.push(...tools.push(event.text));
        }
      };
      for (const piece of pieces) route(reasoning.push(piece));
      route(reasoning.flush());
      events.push(...tools.flush());
      return { thought, events: mergeToolEvents(events) };
    });
  });
});
