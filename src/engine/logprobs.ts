/**
 * Log-probabilities of sampled tokens under the model's raw distribution, as OpenAI and vLLM
 * report them: node-llama-cpp's own probabilities are those of the sampling distribution (after
 * top-k, top-p, min-p and temperature have cut and reshaped it), so they cannot serve.
 *
 * The patched addon computes them in the round's native call, over the raw logits of the
 * sequence's batch row (`unpackRawLogprobs` reads its answer). On the prebuilt addon they are
 * read through node-llama-cpp's native `sampleToken` with a greedy sampler, which changes
 * nothing and can return the logits of chosen tokens, the top ones, and the sum of
 * exp(logit - max) over the vocabulary (`readRawLogprobs`).
 */
import type { NativeContext, NativeSampler } from "./native-addon.js";

export interface RawLogprobs {
  /** The sampled token's log-probability. */
  logprob: number;
  /** The most likely tokens, most likely first. */
  top: Array<{ token: number; logprob: number }>;
}

/** The patched addon's answer: [logprob, then token and logprob of each top alternative]. */
export function unpackRawLogprobs(values: Float32Array): RawLogprobs {
  const top: RawLogprobs["top"] = [];
  for (let i = 1; i + 1 < values.length; i += 2) top.push({ token: values[i]!, logprob: values[i + 1]! });
  return { logprob: values[0]!, top };
}

/** Reads the raw log-probabilities at `batchLogitIndex` through `greedy` (a sampler with no options). */
export async function readRawLogprobs(ctx: NativeContext, greedy: NativeSampler, batchLogitIndex: number, token: number, top: number): Promise<RawLogprobs> {
  // At least the top one: the largest logit, which the weight below is relative to.
  const [, , , pairs = [], weight = 1] = await ctx.sampleToken(batchLogitIndex, greedy, false, false, [[token], false, false, true, Math.max(top, 1)], true);
  const logits = new Map<number, number>();
  for (let i = 0; i + 1 < pairs.length; i += 2) logits.set(pairs[i]!, pairs[i + 1]!);
  const max = Math.max(...logits.values());
  // weight = sum over the vocabulary of exp(logit - max): log Z = max + ln(weight).
  const logZ = max + Math.log(weight);
  const ranked = [...logits].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    logprob: logits.get(token)! - logZ,
    top: ranked.map(([t, logit]) => ({ token: t, logprob: logit - logZ })),
  };
}
