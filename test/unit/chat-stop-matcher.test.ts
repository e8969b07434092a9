import { describe, expect, it } from "vitest";
import { StopMatcher } from "../../src/chat/stop-matcher.js";

function run(stops: string[], pieces: string[]): { text: string; stopped: boolean; matched?: string } {
  const matcher = new StopMatcher(stops);
  let text = "";
  for (const piece of pieces) {
    const result = matcher.push(piece);
    text += result.text;
    if (result.stopped) return { text, stopped: true, matched: result.matched! };
  }
  return { text: text + matcher.flush(), stopped: false };
}

describe("StopMatcher", () => {
  it("cuts the stop string and everything after it", () => {
    expect(run(["STOP"], ["Hello STOP world"])).toEqual({ text: "Hello ", stopped: true, matched: "STOP" });
  });

  it("finds a stop string split across pieces and never emits its start", () => {
    const matcher = new StopMatcher(["</end>"]);
    expect(matcher.push("answer </")).toEqual({ text: "answer ", stopped: false });
    expect(matcher.push("en")).toEqual({ text: "", stopped: false });
    expect(matcher.push("d> trailing")).toEqual({ text: "", stopped: true, matched: "</end>" });
  });

  it("releases held text when the next piece rules the stop string out", () => {
    const matcher = new StopMatcher(["</end>"]);
    expect(matcher.push("a </e")).toEqual({ text: "a ", stopped: false });
    expect(matcher.push("x")).toEqual({ text: "</ex", stopped: false });
  });

  it("releases held text on flush", () => {
    const matcher = new StopMatcher(["###"]);
    expect(matcher.push("done ##")).toEqual({ text: "done ", stopped: false });
    expect(matcher.flush()).toBe("##");
    expect(matcher.flush()).toBe("");
  });

  it("handles several stop strings, the one completing first wins", () => {
    expect(run(["world", "lo w"], ["hello world"])).toEqual({ text: "hel", stopped: true, matched: "lo w" });
    expect(run(["abcd", "c"], ["abcd"])).toEqual({ text: "ab", stopped: true, matched: "c" });
    expect(run(["abcd", "c"], ["a", "b", "c", "d"])).toEqual({ text: "ab", stopped: true, matched: "c" });
    // Ending together, the longer one (starting earlier) wins.
    expect(run(["bc", "abc"], ["xabc"])).toEqual({ text: "x", stopped: true, matched: "abc" });
  });

  it("matches a stop string at the very start", () => {
    expect(run(["\n\n"], ["\n", "\nmore"])).toEqual({ text: "", stopped: true, matched: "\n\n" });
  });

  it("returns nothing after stopping", () => {
    const matcher = new StopMatcher(["x"]);
    expect(matcher.push("ax")).toEqual({ text: "a", stopped: true, matched: "x" });
    expect(matcher.push("more")).toEqual({ text: "", stopped: true });
    expect(matcher.flush()).toBe("");
  });

  it("passes text straight through without stop strings, ignoring empty ones", () => {
    const matcher = new StopMatcher([""]);
    expect(matcher.push("anything")).toEqual({ text: "anything", stopped: false });
    expect(run([], ["a", "b"])).toEqual({ text: "ab", stopped: false });
  });

  it("holds only what could still become a stop string", () => {
    const matcher = new StopMatcher(["abab"]);
    expect(matcher.push("xaba")).toEqual({ text: "x", stopped: false });
    expect(matcher.push("a")).toEqual({ text: "aba", stopped: false });
    expect(matcher.push("bab")).toEqual({ text: "", stopped: true, matched: "abab" });
  });
});
