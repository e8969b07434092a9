/**
 * Log-probabilities of sampled tokens under the model's raw distribution, as OpenAI and vLLM
 * report them. node-llama-cpp's own `evaluateWithMetadata` probabilities are those of the
 * sampling distribution (after top-k, top-p, min-p and temperature have cut and reshaped it), so
 * they cannot serve. Instead the logits the sequence's sampler just used are read a second time,
 * through a greedy sampler that changes nothing, before the next decode overwrites them: the
 * logit mapper of a decode runs, and is awaited, between that decode and the next.
 *
 * This needs two node-llama-cpp 3.22 internals: the sequence's `_decodeTokens` (to see the batch
 * logit index of its sampled token) and the context's native `sampleToken` (which can return the
 * logits of chosen tokens, the top ones, and the sum of exp(logit - max) over the vocabulary).
 * A sequence without logprobs requested runs node-llama-cpp's path untouched.
 */
import type { LlamaContextSequence, LlamaModel } from "node-llama-cpp";

export interface RawLogprobs {
  /** The sampled token's log-probability. */
  logprob: number;
  /** The most likely tokens, most likely first. */
  top: Array<{ token: number; logprob: number }>;
}

type LogitMapper = (batchLogitIndex: number, tokenIndex: number) => unknown;

interface NativeSampler {
  applyConfig(config: Record<string, unknown>): void;
}

/** [filter tokens, include highest, include lowest, include selected, include top n] */
type LogitsFilter = [number[], boolean, boolean, boolean, number];

interface SequenceInternals {
  _decodeTokens(...args: [unknown, unknown, unknown, unknown, unknown, LogitMapper, unknown]): Promise<unknown>;
  _context: {
    _ctx: {
      sampleToken(
        batchLogitIndex: number,
        sampler: NativeSampler,
        probabilities: boolean,
        confidence: boolean,
        logits: LogitsFilter,
        totalLogitWeight: boolean,
      ): Promise<[number, unknown, unknown, number[] | undefined, number | undefined]>;
    };
  };
}

interface ModelInternals {
  _llama: { _bindings: { AddonSampler: new (model: unknown) => NativeSampler } };
  _model: unknown;
}

export class LogprobProbe {
  /** Alternatives to report for each sampled token; undefined = off. */
  top: number | undefined;
  private last: RawLogprobs | undefined;
  private greedy: NativeSampler | undefined;
  private readonly seq: SequenceInternals;

  constructor(sequence: LlamaContextSequence, private readonly model: LlamaModel) {
    this.seq = sequence as unknown as SequenceInternals;
    const decode = this.seq._decodeTokens;
    this.seq._decodeTokens = (...args) => {
      const top = this.top;
      if (top !== undefined) args[5] = this.observe(args[5], top);
      return decode.apply(this.seq, args);
    };
  }

  /** The log-probabilities read with the last sampled token (once). */
  take(): RawLogprobs | undefined {
    const last = this.last;
    this.last = undefined;
    return last;
  }

  private observe(mapper: LogitMapper, top: number): LogitMapper {
    return async (batchLogitIndex, tokenIndex) => {
      const sampled = await mapper(batchLogitIndex, tokenIndex);
      const token = Array.isArray(sampled) ? sampled[0] : sampled;
      if (typeof token === "number" && token >= 0) this.last = await this.read(batchLogitIndex, token, top);
      return sampled;
    };
  }

  private async read(batchLogitIndex: number, token: number, top: number): Promise<RawLogprobs> {
    // A greedy sampler filters nothing; "include selected" adds its pick, the largest logit.
    const sampler = (this.greedy ??= this.greedySampler());
    const [, , , pairs = [], weight = 1] = await this.seq._context._ctx.sampleToken(batchLogitIndex, sampler, false, false, [[token], false, false, true, top], true);
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

  private greedySampler(): NativeSampler {
    const { _llama, _model } = this.model as unknown as ModelInternals;
    const sampler = new _llama._bindings.AddonSampler(_model);
    sampler.applyConfig({});
    return sampler;
  }
}
