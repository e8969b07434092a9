import { describe, expect, it } from "vitest";
import { ReasoningParser, type ReasoningParserOptions } from "../../src/chat/reasoning-parser.js";

const THINKING: ReasoningParserOptions = { enabled: true, startsInReasoning: false };
const OPENED_BY_PROMPT: ReasoningParserOptions = { enabled: true, startsInReasoning: true };
const DISABLED: ReasoningParserOptions = { enabled: false, startsInReasoning: false };

function split(options: ReasoningParserOptions, text: string): { reasoning: string; content: string } {
  const parser = new ReasoningParser(options);
  const out = { reasoning: "", content: "" };
  for (const event of [...parser.push(text), ...parser.flush()]) out[event.type] += event.text;
  return out;
}

describe("ReasoningParser", () => {
  it.each([
    ["<think>\nLet me think.\n</think>\n\nThe answer is 4.", "Let me think.", "The answer is 4."],
    ["<think>\nline 1\n\nline 2\n</think>\n\nanswer\n", "line 1\n\nline 2", "answer\n"],
    ["<think>\n\n</think>\n\nHi", "", "Hi"],
    ["  \n<think>\nr\n</think>\n\nc", "r", "c"],
    ["<think>x </thinking> y</think>z", "x </thinking> y", "z"],
    ["<think>\nunfinished\n", "unfinished\n", ""],
    ["<think>\ncut at </thi", "cut at </thi", ""],
    ["Hello <think>x</think>", "", "Hello <think>x</think>"],
    ["<thi", "", "<thi"],
    ["  ", "", "  "],
    ["", "", ""],
    ["<think>r</think>a <think>b</think>", "r", "a <think>b</think>"],
  ])("splits %j", (text, reasoning, content) => {
    expect(split(THINKING, text)).toEqual({ reasoning, content });
  });

  it("starts in reasoning when the prompt opened <think>", () => {
    expect(split(OPENED_BY_PROMPT, "\nreasoning\n</think>\n\nanswer")).toEqual({ reasoning: "reasoning", content: "answer" });
    expect(split(OPENED_BY_PROMPT, "cut off by max_tokens")).toEqual({ reasoning: "cut off by max_tokens", content: "" });
  });

  it("treats everything as content when thinking is off", () => {
    const text = "<think>\nx\n</think>\n\ny";
    expect(split(DISABLED, text)).toEqual({ reasoning: "", content: text });
  });

  it("streams reasoning as it arrives and holds only a possible marker or trailing newlines", () => {
    const parser = new ReasoningParser(THINKING);
    expect(parser.push("<thi")).toEqual([]);
    expect(parser.push("nk>\n")).toEqual([]);
    expect(parser.push("step one\n")).toEqual([{ type: "reasoning", text: "step one" }]);
    expect(parser.push("step two\n</th")).toEqual([{ type: "reasoning", text: "\nstep two" }]);
    expect(parser.push("ink>\n\nThe")).toEqual([{ type: "content", text: "The" }]);
    expect(parser.push(" end")).toEqual([{ type: "content", text: " end" }]);
    expect(parser.flush()).toEqual([]);
  });

  it("emits one event per type change within a push, never empty ones", () => {
    const parser = new ReasoningParser(THINKING);
    expect(parser.push("<think>\na\n</think>\n\nb")).toEqual([
      { type: "reasoning", text: "a" },
      { type: "content", text: "b" },
    ]);
  });

  it("releases a held partial marker on flush as what it would have been", () => {
    const inReasoning = new ReasoningParser(THINKING);
    expect(inReasoning.push("<think>abc\n</thi")).toEqual([{ type: "reasoning", text: "abc" }]);
    expect(inReasoning.flush()).toEqual([{ type: "reasoning", text: "\n</thi" }]);
    const atStart = new ReasoningParser(THINKING);
    expect(atStart.push("<th")).toEqual([]);
    expect(atStart.flush()).toEqual([{ type: "content", text: "<th" }]);
  });
});
