/** A scheduler slot backed by one node-llama-cpp context sequence. */
import type { LlamaContextSequence, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { commonPrefixLength, type SchedTask, type Slot, type StepResult } from "./scheduler.js";

export interface SlotTask extends SchedTask {
  readonly evaluateOptions: SequenceEvaluateOptions;
}

export class LlamaSlot implements Slot {
  private generator: AsyncGenerator<Token, void, void | Token | Token[]> | null = null;

  constructor(
    readonly id: number,
    private readonly sequence: LlamaContextSequence,
    private readonly isEog: (token: Token) => boolean,
  ) {}

  cachedTokens(): readonly number[] {
    return this.sequence.contextTokens;
  }

  async prepare(task: SchedTask): Promise<number> {
    const { prompt, evaluateOptions } = task as SlotTask;
    const cached = this.sequence.contextTokens;
    // At least one prompt token must be evaluated to get logits for the first sampled token.
    const reused = Math.min(commonPrefixLength(cached, prompt), prompt.length - 1);
    if (reused < this.sequence.nextTokenIndex) {
      await this.sequence.eraseContextTokenRanges([{ start: reused, end: this.sequence.nextTokenIndex }]);
    }
    this.generator = this.sequence.evaluate(prompt.slice(reused) as Token[], {
      ...evaluateOptions,
      yieldEogToken: true,
    });
    return reused;
  }

  async step(): Promise<StepResult> {
    if (!this.generator) throw new Error(`slot ${this.id} has no task`);
    const r = await this.generator.next();
    if (r.done) return { token: -1, eog: true };
    return { token: r.value, eog: this.isEog(r.value) };
  }

  async release(): Promise<void> {
    const gen = this.generator;
    this.generator = null;
    await gen?.return();
  }
}
