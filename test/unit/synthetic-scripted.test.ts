import { describe, expect, it } from "vitest";
import {
  DEFAULT_TRIGGER_TOKENS,
  parseSyntheticUri,
  planScript,
  syntheticModelFileName,
  type ScriptSegment,
} from "../../src/models/synthetic/index.js";
import { QWEN3_VOCAB_SIZE, TokenType, loadQwen3Vocab, toByteLevel } from "../../src/models/synthetic/qwen3-vocab.js";

const vocab = loadQwen3Vocab();
const TOOL_CALL: ScriptSegment[] = [
  { token: "<tool_call>" },
  '\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',
  { token: "</tool_call>" },
];

/** The script as the byte-level strings its tokens are stored as. */
function spelled(tokens: readonly number[]): string {
  return tokens.map((id) => vocab.tokens[id]).join("");
}

function pairs(tokens: readonly number[]): string[] {
  return tokens.slice(1).map((t, i) => `${tokens[i]},${t}`);
}

describe("Qwen3 vocab as convert_hf_to_gguf writes it", () => {
  it("pads to 151936 with [PAD<id>] tokens marked unused", () => {
    expect(vocab.tokens).toHaveLength(QWEN3_VOCAB_SIZE);
    expect(vocab.tokens[151669]).toBe("[PAD151669]");
    expect(vocab.tokenTypes[QWEN3_VOCAB_SIZE - 1]).toBe(TokenType.UNUSED);
  });

  it("types added tokens: special or <|...|> are control, the rest user-defined", () => {
    expect(vocab.tokens[151645]).toBe("<|im_end|>");
    expect(vocab.tokenTypes[151645]).toBe(TokenType.CONTROL);
    expect(vocab.tokenTypes[151659]).toBe(TokenType.CONTROL); // <|fim_prefix|>: not special, looks special
    for (const id of [151657, 151658, 151667, 151668]) expect(vocab.tokenTypes[id]).toBe(TokenType.USER_DEFINED);
    expect(vocab.tokenTypes[198]).toBe(TokenType.NORMAL);
  });

  it("has the special ids llama.cpp needs", () => {
    expect([vocab.eosId, vocab.padId, vocab.bosId, vocab.addBos]).toEqual([151645, 151643, 151643, false]);
    expect(vocab.merges[0]).toBe("Ġ Ġ");
    expect(vocab.chatTemplate).toContain("enable_thinking");
  });
});

describe("script segmentation", () => {
  it("spells a tool call with single added-token ids and no repeated token pair", () => {
    const { tokens } = planScript({ segments: TOOL_CALL });
    expect(tokens[0]).toBe(151657);
    expect(tokens.at(-1)).toBe(151658);
    expect(tokens[1]).toBe(198); // "\n" right after <tool_call>: no other token spells it
    expect(spelled(tokens.slice(1, -1))).toBe(toByteLevel('\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'));
    expect(new Set(pairs(tokens)).size).toBe(tokens.length - 1);
  });

  it("spells a tag given as text with ordinary tokens, never its added token", () => {
    const { tokens } = planScript({ segments: ["<tool_call>", '\n{"name": "f"}\n', "</tool_call>"] });
    const added = new Set(vocab.addedIds.values());
    expect(tokens.filter((id) => added.has(id))).toEqual([]);
    expect(spelled(tokens)).toBe(toByteLevel('<tool_call>\n{"name": "f"}\n</tool_call>'));
  });

  it("lets triggers and repeated tokens occur with distinct predecessors", () => {
    const plan = planScript({ segments: [{ token: "<think>" }, "\nok\n", { token: "</think>" }, "\n\nHi"] });
    // "\n" (also a trigger) twice, after <think> and after "ok"; "\n\n" (a trigger) after </think>.
    expect(plan.tokens.filter((t) => t === 198)).toHaveLength(2);
    expect(plan.tokens).toContain(271);
    expect(plan.contextDependentTokens).toContain(198);
    expect(plan.contextDependentTokens).toContain(271);
  });

  it("varies the tokenization of repeated text", () => {
    const { tokens } = planScript({ segments: ["ha ha ha ha ha ha"] });
    expect(spelled(tokens)).toBe(toByteLevel("ha ha ha ha ha ha"));
    expect(new Set(pairs(tokens)).size).toBe(tokens.length - 1);
  });

  it("sizes n_embd in whole 32-wide blocks", () => {
    expect(planScript({ segments: ["Hi"] }).embeddingLength).toBe(32);
    const long = planScript({ segments: ["The quick brown fox jumps over the lazy dog. ".repeat(3)] });
    expect(long.embeddingLength % 32).toBe(0);
    expect(long.embeddingLength).toBeGreaterThan(long.tokens.length);
  });

  it("fails clearly on impossible scripts", () => {
    expect(() => planScript({ segments: [{ token: "<nope>" }] })).toThrow(/not an added token/);
    expect(() => planScript({ segments: [{ token: "<|im_end|>" }] })).toThrow(/EOS/);
    expect(() => planScript({ segments: ["aaaa".repeat(40)] })).toThrow(/repeating a \(previous, current\) token pair|gave up/);
    expect(() => planScript({ segments: ["Hi"], loop: 5 })).toThrow(/loop index/);
    expect(() => planScript({ segments: ["Hi"], triggers: [] })).toThrow(/trigger/);
  });

  it("defaults to the generation-prompt endings \\n and \\n\\n", () => {
    expect(DEFAULT_TRIGGER_TOKENS).toEqual([vocab.normalIds.get("Ċ"), vocab.normalIds.get("ĊĊ")]);
  });
});

describe("synthetic model URIs and cache names", () => {
  it("parses synthetic:<preset>[:<quant>]", () => {
    expect(parseSyntheticUri("synthetic:tiny")).toEqual({ kind: "preset", preset: "tiny" });
    expect(parseSyntheticUri("synthetic:qwen3-0.6b:q8_0")).toEqual({ kind: "preset", preset: "qwen3-0.6b", quant: "q8_0" });
    expect(() => parseSyntheticUri("synthetic:huge")).toThrow(/unknown preset/);
    expect(() => parseSyntheticUri("synthetic:tiny:q2_k")).toThrow(/unknown weight type/);
    expect(() => parseSyntheticUri("hf:x/y")).toThrow(/not a synthetic/);
  });

  it("names files by what they contain, defaults included", () => {
    const tiny = syntheticModelFileName({ kind: "preset", preset: "tiny" });
    expect(tiny).toMatch(/^synthetic-tiny-q8_0-[0-9a-f]{16}\.gguf$/);
    expect(syntheticModelFileName({ kind: "preset", preset: "tiny", quant: "q8_0", seed: 1 })).toBe(tiny);
    expect(syntheticModelFileName({ kind: "preset", preset: "tiny", seed: 2 })).not.toBe(tiny);
    const script = syntheticModelFileName({ kind: "scripted", segments: ["Hi"] });
    expect(syntheticModelFileName({ kind: "scripted", segments: ["Hi"], triggers: [198, 271] })).toBe(script);
    expect(syntheticModelFileName({ kind: "scripted", segments: ["Hi"], loop: true })).not.toBe(script);
  });
});
