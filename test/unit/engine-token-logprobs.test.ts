import { describe, expect, it } from "vitest";
import { TokenLogprobs } from "../../src/engine/token-logprobs.js";
import { legacyLogprobs } from "../../src/openai/completions.js";

const raw = (logprob: number, top: Array<[number, number]> = []) => ({ logprob, top: top.map(([token, lp]) => ({ token, logprob: lp })) });

describe("TokenLogprobs", () => {
  it("hands out each entry with the text that reaches it, and drops the ones a stop string cut off", () => {
    const lp = new TokenLogprobs((t) => `<${t}>`);
    lp.add("Hel", raw(-0.1, [[1, -0.1], [2, -2.5]]), "answer");
    lp.add("lo", raw(-0.2), "answer");
    lp.add(" STOP", raw(-0.3), "answer");
    expect(lp.emitted(2)).toEqual([{ token: "Hel", bytes: [72, 101, 108], logprob: -0.1, top: [{ token: "<1>", bytes: [60, 49, 62], logprob: -0.1 }, { token: "<2>", bytes: [60, 50, 62], logprob: -2.5 }] }]);
    // "lo" starts at 3, inside the 5 characters emitted by now; " STOP" starts past them.
    expect(lp.emitted(3).map((e) => e.token)).toEqual(["lo"]);
    lp.end();
    expect(lp.emitted(0)).toEqual([]);
    expect(lp.pending).toBe(true);
  });

  it("leaves out the think block and its layout; undecided tokens follow the next decision", () => {
    const lp = new TokenLogprobs(String);
    lp.add("<", raw(-1), "undecided");
    lp.add("think>", raw(-1), "reasoning");
    lp.add("x", raw(-1), "reasoning");
    lp.add("\n\n", raw(-1), "layout");
    lp.add("<", raw(-0.5), "undecided");
    lp.add("b", raw(-0.5), "answer");
    lp.add("!", undefined, "answer");
    expect(lp.emitted(100).map((e) => e.token)).toEqual(["<", "b"]);
  });

  it("gives undecided tokens to the answer when the output ends before a decision", () => {
    const lp = new TokenLogprobs(String);
    lp.add("<th", raw(-1), "undecided");
    lp.end();
    expect(lp.emitted(3).map((e) => e.token)).toEqual(["<th"]);
  });

  it("a token that completes a multi-byte character carries it whole, the bytes before it carry nothing", () => {
    const lp = new TokenLogprobs(String);
    lp.add("", raw(-0.1), "answer");
    lp.add("ü", raw(-0.2), "answer");
    expect(lp.emitted(1).map((e) => [e.token, e.bytes])).toEqual([["", []], ["ü", [0xc3, 0xbc]]]);
  });
});

describe("legacyLogprobs", () => {
  it("offsets continue from the given one and each top map holds the sampled token", () => {
    const entry = (token: string, logprob: number, top: Array<[string, number]>) => ({
      token,
      bytes: [],
      logprob,
      top: top.map(([t, l]) => ({ token: t, bytes: [], logprob: l })),
    });
    const out = legacyLogprobs([entry("ab", -1, [["x", -0.5]]), entry("c", -0.1, [["c", -0.1]])], 4);
    expect(out).toEqual({
      tokens: ["ab", "c"],
      token_logprobs: [-1, -0.1],
      top_logprobs: [{ x: -0.5, ab: -1 }, { c: -0.1 }],
      text_offset: [4, 6],
    });
  });
});
