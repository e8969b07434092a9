/**
 * One admitted request's generation, as the scheduler's task: turns sampled tokens into text
 * events (UTF-8 safe, stop strings held back), tracks the thought for the thinking budget and
 * the grammar, and reports usage and timings when it ends.
 */
import { LlamaGrammarEvaluationState, type LlamaGrammar, type LlamaModel, type SequenceEvaluateOptions, type Token } from "node-llama-cpp";
import type { FinishReason, GenerationEvent } from "./types.js";
import type { SlotTask } from "./llama-slot.js";
import type { StepResult } from "./scheduler.js";
import { IncrementalDetokenizer } from "../chat/incremental-detokenizer.js";
import { StopMatcher } from "../chat/stop-matcher.js";
import { ThoughtTracker } from "./thought.js";
import { TokenLogprobs } from "./token-logprobs.js";
import type { RawLogprobs } from "./logprobs.js";
import { toApiError } from "../openai/errors.js";

export interface GenerationSpec {
  prompt: Token[];
  maxTokens: number;
  stop: string[];
  thinking: boolean;
  startsInReasoning: boolean;
  thinkingBudget: number;
  grammar: LlamaGrammar | undefined;
  /** Sampling options without the grammar; `recentTokens` feeds the repetition penalties. */
  evaluateOptions: (recentTokens: () => number[]) => SequenceEvaluateOptions;
  /** Tokens that close a thought (`\n</think>\n\n`), injected when the budget is spent. */
  thoughtClose: Token[];
  /** Alternatives to report with each token's log-probability; undefined = no logprobs. */
  logprobs: number | undefined;
}

export class Generation implements SlotTask {
  cancelled = false;
  readonly prompt: Token[];
  preemptions = 0;
  readonly evaluateOptions: SequenceEvaluateOptions;
  readonly logprobs: number | undefined;
  private readonly tokenLogprobs: TokenLogprobs | undefined;
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopMatcher;
  private readonly thought: ThoughtTracker;
  private readonly generated: number[] = [];
  private readonly timings = { enqueued: performance.now(), admitted: 0, firstToken: 0 };
  private injection: Token[] | undefined;
  private cachedTokens = 0;
  /** Tokens generated since the last text event (a token can yield no text until its UTF-8 completes). */
  private unreportedTokens = 0;
  private ended = false;

  constructor(
    private readonly spec: GenerationSpec,
    model: LlamaModel,
    private readonly emit: (event: GenerationEvent) => void,
    private readonly hooks: {
      onAdmitted(slotId: number, reused: number): void;
      onPreempted(): void;
      onError(err: unknown): void;
      onReleased(): void;
    },
  ) {
    this.prompt = spec.prompt;
    this.logprobs = spec.logprobs;
    if (spec.logprobs !== undefined) this.tokenLogprobs = new TokenLogprobs((t) => model.detokenize([t as Token], true));
    this.detok = new IncrementalDetokenizer((tokens) => model.detokenize(tokens as Token[], true));
    this.stops = new StopMatcher(spec.stop);
    this.thought = new ThoughtTracker({ thinking: spec.thinking, startsInReasoning: spec.startsInReasoning, budget: spec.thinkingBudget });
    const grammarState = spec.grammar && new LlamaGrammarEvaluationState({ model, grammar: spec.grammar });
    this.evaluateOptions = {
      ...spec.evaluateOptions(() => this.generated),
      // Read at every sampling: the grammar starts with the answer, after any thought.
      ...(grammarState && { grammarEvaluationState: () => (this.thought.answering ? grammarState : undefined) }),
    };
  }

  tokens(): readonly number[] {
    // After a preemption the generated tokens are evaluated again with the prompt, so sampling
    // resumes where it stopped; none of them is sent twice.
    return this.preemptions === 0 ? this.prompt : [...this.prompt, ...this.generated];
  }

  onPreempted(): void {
    this.preemptions++;
    // Tokens to inject were accepted already: they are part of tokens() now.
    this.injection = undefined;
    this.hooks.onPreempted();
  }

  takeInjection(): Token[] | undefined {
    const tokens = this.injection;
    this.injection = undefined;
    return tokens;
  }

  onAdmitted(slotId: number, reused: number): void {
    // A resumed request keeps its first admission's timings and prompt cache figure.
    if (this.preemptions === 0) {
      this.timings.admitted = performance.now();
      this.cachedTokens = reused;
    }
    this.hooks.onAdmitted(slotId, reused);
  }

  onToken({ token, eog, logprobs }: StepResult): boolean {
    if (!this.timings.firstToken) this.timings.firstToken = performance.now();
    if (eog) {
      this.pushText(this.detok.flush());
      this.finish("stop");
      return true;
    }
    if (this.thought.budgetSpent) {
      // The sampled token would extend the thought: drop it and close the thought instead, as
      // the model would have; the answer is sampled after the closing tokens.
      this.injection = this.spec.thoughtClose;
      return this.spec.thoughtClose.some((t) => this.accept(t));
    }
    return this.accept(token as Token, logprobs);
  }

  onError(err: unknown): void {
    this.hooks.onError(err);
    if (this.ended) return;
    this.ended = true;
    this.emit({ type: "failed", error: toApiError(err).toJSON() });
  }

  onReleased(): void {
    this.hooks.onReleased();
  }

  /** Takes one completion token into the output; returns true when that ends the generation. */
  private accept(token: Token, logprobs?: RawLogprobs): boolean {
    this.generated.push(token);
    this.unreportedTokens++;
    const text = this.detok.push([token]);
    const place = this.thought.observe(text);
    this.tokenLogprobs?.add(text, logprobs, place);
    if (this.pushText(text)) {
      this.finish("stop");
      return true;
    }
    if (this.generated.length >= this.spec.maxTokens) {
      this.pushText(this.detok.flush());
      this.finish("length");
      return true;
    }
    return false;
  }

  /** Emits what the stop matcher releases; returns true when a stop string matched. */
  private pushText(text: string): boolean {
    if (!text) return false;
    const out = this.stops.push(text);
    if (out.text) this.emitText(out.text);
    return out.stopped;
  }

  private emitText(text: string): void {
    const logprobs = this.tokenLogprobs?.emitted(text.length);
    this.emit({ type: "text", text, tokens: this.unreportedTokens, ...(logprobs && { logprobs }) });
    this.unreportedTokens = 0;
  }

  private finish(finishReason: FinishReason): void {
    if (this.ended) return;
    this.ended = true;
    this.tokenLogprobs?.end();
    const tail = this.stops.flush();
    if (tail || this.unreportedTokens || this.tokenLogprobs?.pending) this.emitText(tail);
    const now = performance.now();
    const { enqueued, admitted, firstToken } = this.timings;
    this.emit({
      type: "done",
      finishReason,
      completionTokens: this.generated.length,
      reasoningTokens: this.thought.reasoningTokens,
      cachedTokens: this.cachedTokens,
      timings: {
        queueMs: admitted - enqueued,
        prefillMs: (firstToken || now) - admitted,
        decodeMs: firstToken ? now - firstToken : 0,
      },
    });
  }
}
