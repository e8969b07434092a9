/** A scheduler slot backed by one node-llama-cpp context sequence. */
import type { LlamaContextSequence, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { commonPrefixLength, type SchedTask, type Slot, type StepOutcome } from "./scheduler.js";

export interface SlotTask extends SchedTask {
  readonly evaluateOptions: SequenceEvaluateOptions;
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

  /** `prefillChunk` bounds the prompt tokens one step evaluates. */
  constructor(
    readonly id: number,
    private readonly sequence: LlamaContextSequence,
    private readonly isEog: (token: Token) => boolean,
    private readonly prefillChunk: number,
  ) {}

  cachedTokens(): readonly number[] {
    return this.sequence.contextTokens;
  }

  async prepare(task: SchedTask): Promise<number> {
    this.task = task as SlotTask;
    const { prompt } = this.task;
    const cached = this.sequence.contextTokens;
    // At least one prompt token must be evaluated to get logits for the first sampled token.
    const reused = Math.min(commonPrefixLength(cached, prompt), prompt.length - 1);
    if (reused < this.sequence.nextTokenIndex) {
      await this.sequence.eraseContextTokenRanges([{ start: reused, end: this.sequence.nextTokenIndex }]);
    }
    this.pendingPrompt = prompt.slice(reused) as Token[];
    this.generator = null;
    return reused;
  }

  nextStepTokens(): number {
    return this.generator ? 1 : Math.min(this.pendingPrompt.length, this.prefillChunk);
  }

  async step(): Promise<StepOutcome> {
    if (!this.task) throw new Error(`slot ${this.id} has no task`);
    if (!this.generator) {
      if (this.pendingPrompt.length > this.prefillChunk) {
        await this.sequence.evaluateWithoutGeneratingNewTokens(this.pendingPrompt.splice(0, this.prefillChunk));
        return { prefill: true };
      }
      this.generator = this.sequence.evaluate(this.pendingPrompt, { ...this.task.evaluateOptions, yieldEogToken: true });
      this.pendingPrompt = [];
    }
    const r = await this.generator.next(this.task.takeInjection());
    if (r.done) return { token: -1, eog: true };
    return { token: r.value, eog: this.isEog(r.value) };
  }

  async release(): Promise<void> {
    const gen = this.generator;
    this.generator = null;
    this.task = null;
    this.pendingPrompt = [];
    await gen?.return();
  }
}
