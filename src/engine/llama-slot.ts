/** A scheduler slot backed by one node-llama-cpp context sequence. */
import type { LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { commonPrefixLength, type SchedTask, type Slot, type StepOutcome } from "./scheduler.js";
import { LogprobProbe } from "./logprobs.js";

interface SequenceInternals {
  _copyStateFromOtherSequence(other: LlamaContextSequence, upToTokenIndex: number): Promise<boolean>;
}

export interface SlotTask extends SchedTask {
  readonly evaluateOptions: SequenceEvaluateOptions;
  /** Alternatives to report with each sampled token's log-probability; undefined = no logprobs. */
  readonly logprobs: number | undefined;
  /**
   * Tokens to evaluate in place of the token just sampled (which is then dropped), or undefined
   * to continue with it. They go in the same step, so the slot still advances once per round.
   */
  takeInjection(): Token[] | undefined;
}

export class LlamaSlot implements Slot {
  private generator: AsyncGenerator<Token, void, void | Token | Token[]> | null = null;
  private task: SlotTask | null = null;
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

  async prepare(task: SchedTask, reuse: boolean): Promise<number> {
    this.task = task as SlotTask;
    const tokens = this.task.tokens();
    // At least one token must be evaluated to get logits for the next sampled token.
    const reused = reuse ? Math.min(commonPrefixLength(this.sequence.contextTokens, tokens), tokens.length - 1) : 0;
    await this.truncate(reused);
    this.pendingPrompt = tokens.slice(reused) as Token[];
    this.generator = null;
    this.lastToken = undefined;
    this.probe.top = this.task.logprobs;
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
    if (!this.task) throw new Error(`slot ${this.id} has no task`);
    let evaluated: readonly Token[];
    let injection: Token[] | undefined;
    if (!this.generator) {
      if (this.pendingPrompt.length > this.prefillChunk) {
        const chunk = this.pendingPrompt.splice(0, this.prefillChunk);
        await this.sequence.evaluateWithoutGeneratingNewTokens(chunk);
        return { prefill: true, evaluated: chunk };
      }
      this.generator = this.sequence.evaluate(this.pendingPrompt, { ...this.task.evaluateOptions, yieldEogToken: true });
      evaluated = this.pendingPrompt;
      this.pendingPrompt = [];
    } else {
      // node-llama-cpp's generator evaluates what next() passes, or else the token it yielded last.
      injection = this.task.takeInjection();
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
    this.task = null;
    this.pendingPrompt = [];
    this.lastToken = undefined;
    this.probe.top = undefined;
    await gen?.return();
  }
}
