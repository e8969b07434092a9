/** Builders for text_completion objects and chunks, with the legacy logprobs shape, as OpenAI's Completions API. */
import type { TokenLogprob } from "../engine/types.js";
import type { CompletionIds, Usage, WireFinishReason } from "./chunks.js";

/** `choices[].logprobs` of a completion: per token its text, log-probability, alternatives and offset in the choice's text. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/**
 * The legacy shape of `entries`, whose first token starts at `offset` in the choice's text.
 * As OpenAI documents, each top_logprobs map holds the sampled token too (so up to n + 1 entries).
 */
export function legacyLogprobs(entries: readonly TokenLogprob[], offset: number): LegacyLogprobs {
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const e of entries) {
    const pairs = e.top.map((t): [string, number] => [t.token, t.logprob]);
    if (!e.top.some((t) => t.token === e.token)) pairs.push([e.token, e.logprob]);
    // fromEntries defines own properties: a token spelled "__proto__" stays a key.
    const top = Object.fromEntries(pairs);
    out.tokens.push(e.token);
    out.token_logprobs.push(e.logprob);
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += e.token.length;
  }
  return out;
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: LegacyLogprobs | null;
  finish_reason: WireFinishReason | null;
}

const envelope = (ids: CompletionIds) => ({
  id: ids.id,
  object: "text_completion" as const,
  created: ids.created,
  model: ids.model,
  system_fingerprint: null,
});

export function textCompletion(ids: CompletionIds, choices: CompletionChoice[], u: Usage) {
  return { ...envelope(ids), choices, usage: u };
}

export function textCompletionChunk(ids: CompletionIds, choice: CompletionChoice) {
  return { ...envelope(ids), choices: [choice] };
}

export function textCompletionUsageChunk(ids: CompletionIds, u: Usage) {
  return { ...envelope(ids), choices: [], usage: u };
}
