import { describe, expect, it } from "vitest";
import { ThoughtTracker, type ThoughtOptions } from "../../src/engine/thought.js";

/** Feeds one text piece per token; returns the tracker state after each. */
function track(pieces: string[], options: Partial<ThoughtOptions> = {}) {
  const tracker = new ThoughtTracker({ thinking: true, startsInReasoning: false, budget: 0, ...options });
  const states = pieces.map((piece) => {
    const spentBefore = tracker.budgetSpent;
    tracker.observe(piece);
    return { spentBefore, answering: tracker.answering };
  });
  return { tracker, states };
}

describe("ThoughtTracker", () => {
  it("counts the tokens that open, fill and close the thought as reasoning, not the answer", () => {
    const { tracker, states } = track(["<think>", "\n", "Plan", " it", ".\n", "</think>", "\n\n", "Done", "."]);
    expect(tracker.reasoningTokens).toBe(6);
    expect(states.map((s) => s.answering)).toEqual([false, false, false, false, false, true, true, true, true]);
  });

  it("places each token: the think block, the blank line after it, the answer; split markers wait to be decided", () => {
    const tracker = new ThoughtTracker({ thinking: true, startsInReasoning: false, budget: 0 });
    const places = ["<", "think", ">", "x", "</think>", "\n\n", "\n", "Done", "\n"].map((t) => tracker.observe(t));
    expect(places).toEqual(["undecided", "undecided", "reasoning", "reasoning", "reasoning", "layout", "layout", "answer", "answer"]);
    const direct = new ThoughtTracker({ thinking: true, startsInReasoning: false, budget: 0 });
    expect(["Hi", "\n"].map((t) => direct.observe(t))).toEqual(["answer", "answer"]);
  });

  it("finds markers spelled as several ordinary tokens", () => {
    const { tracker, states } = track(["<", "think", ">", "x", "</", "think", ">", "y"]);
    expect(tracker.reasoningTokens).toBe(7);
    expect(states.at(-2)!.answering).toBe(true);
  });

  it("is answering from the start when thinking is off, or once the model skips the thought", () => {
    expect(track([], { thinking: false }).tracker.answering).toBe(true);
    const skipped = track(["Hello", " <think>"]);
    expect(skipped.tracker.reasoningTokens).toBe(0);
    expect(skipped.states[0]!.answering).toBe(true);
  });

  it("is undecided until the output shows whether it opens a thought, and tells whether it did", () => {
    const split = track(["\n", "<", "th", "ink>", "x", "</think>", "y"]);
    expect(split.tracker.thoughtOpened).toBe(true);
    const direct = new ThoughtTracker({ thinking: true, startsInReasoning: false, budget: 0 });
    const undecided = ["\n", "<", "tool", "_call>"].map((piece) => {
      direct.observe(piece);
      return direct.undecided;
    });
    expect(undecided).toEqual([true, true, false, false]);
    expect(direct.answering).toBe(true);
    expect(direct.thoughtOpened).toBe(false);
    expect(track([], { startsInReasoning: true }).tracker.thoughtOpened).toBe(true);
    expect(track([], { thinking: false }).tracker.undecided).toBe(false);
  });

  it("starts inside the thought when the prompt opened it", () => {
    const { tracker } = track(["x", "y", "</think>", "z"], { startsInReasoning: true });
    expect(tracker.reasoningTokens).toBe(3);
    expect(tracker.answering).toBe(true);
  });

  it("reports the budget spent after that many thought tokens, and never outside the thought", () => {
    const { states } = track(["<think>", "a", "b", "c", "d"], { budget: 3 });
    // <think> itself is not part of the budget; after a, b, c the next token must not extend the thought.
    expect(states.map((s) => s.spentBefore)).toEqual([false, false, false, false, true]);
    const closed = track(["<think>", "a", "</think>", "b", "c", "d"], { budget: 2 });
    expect(closed.states.some((s) => s.spentBefore)).toBe(false);
  });

  it("has no budget at 0", () => {
    const { states } = track(["<think>", ...Array.from({ length: 50 }, () => "x")], { budget: 0 });
    expect(states.some((s) => s.spentBefore)).toBe(false);
  });
});
