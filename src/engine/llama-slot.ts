/** A scheduler slot backed by one node-llama-cpp context sequence. */
import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { commonPrefixLength, type Slot, type StepOutcome } from "./scheduler.js";
import type { Request } from "./request.js";
import { LogprobProbe } from "./logprobs.js";

interface SequenceInternals {
  _copyStateFromOtherSequence(other: LlamaContextSequence, upToTokenIndex: number): Promise<boolean>;
}

export class LlamaSlot implements Slot {
  private generator: AsyncGenerator<Token, void, void | Token | Token[]> | null = null;
  private request: Request | null = null;
  /** Prompt tokens not evaluated yet; the last chunk goes to the generator. */
  private pendingPrompt: Token[] = [];
  /** The token sampled last: the generator evaluates it next unless an injection replaces it. */
  private lastToken: Token | undefined;
  private readonly probe: LogprobProbe;

  /** `prefillChunk` bounds the prompt tokens one step evaluates. */
  constructor(
    readonly id: number,
    readonly sequence: LlamaContextSequence,
    private readonly model: LlamaModel,
    private readonly prefillChunk: number,
  ) {
    this.probe = new LogprobProbe(sequence, model);
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
    this.generator = null;
    this.lastToken = undefined;
    this.probe.top = request.logprobs;
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
    return this.generator ? 1 : Math.min(this.pendingPrompt.length, this.prefillChunk);
  }

  async step(): Promise<StepOutcome> {
    if (!this.request) throw new Error(`slot ${this.id} has no request`);
    let evaluated: readonly Token[];
    let injection: Token[] | undefined;
    if (!this.generator) {
      if (this.pendingPrompt.length > this.prefillChunk) {
        const chunk = this.pendingPrompt.splice(0, this.prefillChunk);
        await this.sequence.evaluateWithoutGeneratingNewTokens(chunk);
        return { prefill: true, evaluated: chunk };
      }
      this.generator = this.sequence.evaluate(this.pendingPrompt, { ...this.request.sink.evaluateOptions, yieldEogToken: true });
      evaluated = this.pendingPrompt;
      this.pendingPrompt = [];
    } else {
      // node-llama-cpp's generator evaluates what next() passes, or else the token it yielded last.
      injection = this.request.takeInjection();
      evaluated = injection ?? [this.lastToken!];
    }
    const r = await this.generator.next(injection);
    if (r.done) return { token: -1, eog: true, evaluated };
    this.lastToken = r.value;
    const logprobs = this.probe.take();
    return { token: r.value, eog: this.model.isEogToken(r.value), evaluated, ...(logprobs && { logprobs }) };
  }

  async release(): Promise<void> {
    const gen = this.generator;
    this.generator = null;
    this.request = null;
    this.pendingPrompt = [];
    this.lastToken = undefined;
    this.probe.top = undefined;
    await gen?.return();
  }
}
