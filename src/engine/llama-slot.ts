/** A scheduler slot backed by one node-llama-cpp context sequence. */
import type { LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { commonPrefixLength, type Slot, type StepOutcome } from "./scheduler.js";
import type { Request } from "./request.js";
import { RoundDecoder } from "./round-decoder.js";
import type { NativeSampler } from "./native-addon.js";

interface SequenceInternals {
  _copyStateFromOtherSequence(other: LlamaContextSequence, upToTokenIndex: number): Promise<boolean>;
}

/**
 * Whether the sampler's configuration can change from one token to the next: penalties over the
 * recent tokens, a grammar state that follows the output, a token bias computed per token. Any
 * other configuration stays as the first sampling step gave it, so it is given once per sampler
 * (node-llama-cpp resolves and hands it over before every token, 20 fields read by the addon).
 */
function followsOutput(options: SequenceEvaluateOptions): boolean {
  return typeof options.repeatPenalty === "object" || typeof options.grammarEvaluationState === "function" || typeof options.tokenBias === "function";
}

export class LlamaSlot implements Slot {
  private request: Request | null = null;
  /** Prompt tokens not evaluated yet; the step that evaluates the last of them samples the first token. */
  private pendingPrompt: Token[] = [];
  /** The token sampled last: the next step evaluates it unless an injection replaces it. */
  private lastToken: Token | undefined;
  /** The request's sampler (its penalties, grammar and seed state), made at its first sampling step. */
  private sampler: NativeSampler | undefined;
  private readonly decoder: RoundDecoder;

  constructor(
    readonly id: number,
    readonly sequence: LlamaContextSequence,
    private readonly model: LlamaModel,
  ) {
    this.decoder = RoundDecoder.of(sequence.context);
  }

  cachedTokens(): readonly number[] {
    return this.sequence.contextTokens;
  }

  async prepare(request: Request, reuse: boolean): Promise<number> {
    this.request = request;
    const tokens = request.tokens();
    // At least one token must be evaluated to get logits for the next sampled token.
    const reused = reuse ? Math.min(commonPrefixLength(this.sequence.contextTokens, tokens), tokens.length - 1) : 0;
    await this.truncate(reused);
    this.pendingPrompt = tokens.slice(reused) as Token[];
    this.lastToken = undefined;
    this.disposeSampler();
    return reused;
  }

  async copyPrefix(donor: Slot, tokens: number): Promise<boolean> {
    // node-llama-cpp's own (internal) sequence copy: llama_memory_seq_cp of the donor's cells,
    // shared in a unified pool, a copy of the donor's cache region otherwise.
    const copy = (this.sequence as unknown as SequenceInternals)._copyStateFromOtherSequence;
    const copied = await copy.call(this.sequence, (donor as LlamaSlot).sequence, tokens);
    if (!copied) await this.truncate(0);
    return copied;
  }

  async truncate(keep: number): Promise<void> {
    const end = this.sequence.nextTokenIndex;
    if (keep < end) await this.sequence.eraseContextTokenRanges([{ start: keep, end }]);
  }

  nextStepTokens(): number {
    return this.pendingPrompt.length > 0 ? this.pendingPrompt.length : (this.request?.decodeStepTokens() ?? 1);
  }

  /**
   * Submits this slot's part of the round to the context's RoundDecoder before its first await:
   * the scheduler issues every slot's step in one tick, and the decoder makes one batch of them.
   */
  async step(tokens: number): Promise<StepOutcome> {
    const request = this.request;
    if (!request) throw new Error(`slot ${this.id} has no request`);
    if (this.pendingPrompt.length > tokens) {
      const chunk = this.pendingPrompt.splice(0, tokens);
      await this.decoder.submit(this.sequence, chunk);
      return { prefill: true, evaluated: chunk };
    }
    let evaluated: Token[];
    if (this.pendingPrompt.length > 0) {
      evaluated = this.pendingPrompt;
      this.pendingPrompt = [];
    } else {
      evaluated = request.takeInjection() ?? [this.lastToken!];
    }
    const options = request.sink.evaluateOptions;
    let sampler = this.sampler;
    if (!sampler || followsOutput(options)) {
      sampler ??= this.sampler = this.decoder.newSampler();
      this.decoder.configure(sampler, this.sequence, options);
    }
    const { token = -1, logprobs } = await this.decoder.submit(this.sequence, evaluated, { sampler, logprobs: request.logprobs });
    if (token < 0) throw new Error("Failed to sample next token");
    this.lastToken = token as Token;
    return { token, eog: this.model.isEogToken(token as Token), evaluated, ...(logprobs && { logprobs }) };
  }

  async release(): Promise<void> {
    this.request = null;
    this.pendingPrompt = [];
    this.lastToken = undefined;
    this.disposeSampler();
  }

  private disposeSampler(): void {
    this.sampler?.dispose();
    this.sampler = undefined;
  }
}
