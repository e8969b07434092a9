/**
 * A request's output side (its `RequestSink`, as vLLM's output processor keeps a state per
 * request): turns its sampled tokens into text events (UTF-8 safe, stop strings held back),
 * tracks the thought for the thinking budget and the grammar, and reports usage and timings
 * when it ends. The tokens so far are the request's, kept by the scheduler's `Request`.
 */
import { LlamaGrammarEvaluationState, type LlamaGrammar, type LlamaModel, type SequenceEvaluateOptions, type Token } from "node-llama-cpp";
import type { AnswerGrammars } from "./grammar.js";
import type { FinishReason, GenerationEvent } from "./types.js";
import type { Request, RequestSink } from "./request.js";
import type { StepResult } from "./request.js";
import { IncrementalDetokenizer } from "../chat/incremental-detokenizer.js";
import { StopMatcher } from "../chat/stop-matcher.js";
import { ThoughtTracker } from "./thought.js";
import { TokenLogprobs } from "./token-logprobs.js";
import type { RawLogprobs } from "./logprobs.js";
import { toEngineErrorInfo } from "./errors.js";

export interface GenerationSpec {
  maxTokens: number;
  stop: string[];
  thinking: boolean;
  startsInReasoning: boolean;
  thinkingBudget: number;
  grammar: AnswerGrammars | undefined;
  /** Sampling options without the grammar; `recentTokens` feeds the repetition penalties. */
  evaluateOptions: (recentTokens: () => number[]) => SequenceEvaluateOptions;
  /** Tokens that close a thought (`\n</think>\n\n`), injected when the budget is spent or a grammar's answer is due. */
  thoughtClose: Token[];
}

export class Generation implements RequestSink {
  readonly evaluateOptions: SequenceEvaluateOptions;
  private readonly tokenLogprobs: TokenLogprobs | undefined;
  private readonly detok: IncrementalDetokenizer;
  private readonly stops: StopMatcher;
  private readonly thought: ThoughtTracker;
  /** The request's completion tokens so far. */
  private readonly generated: number[];
  private readonly timings = { enqueued: performance.now(), admitted: 0, firstToken: 0 };
  private cachedTokens = 0;
  /** Tokens generated since the last text event (a token can yield no text until its UTF-8 completes). */
  private unreportedTokens = 0;
  private stopSequence: string | undefined;
  private ended = false;
  /** Grammar states, made when first needed: see grammarState(). */
  private openingGrammar: LlamaGrammarEvaluationState | undefined;
  private answerGrammar: LlamaGrammarEvaluationState | undefined;

  constructor(
    private readonly request: Request,
    private readonly spec: GenerationSpec,
    private readonly model: LlamaModel,
    private readonly emit: (event: GenerationEvent) => void,
    private readonly hooks: {
      onAdmitted(slotId: number, reused: number): void;
      onPreempted(): void;
      onError(err: unknown): void;
      onReleased(): void;
    },
  ) {
    this.generated = request.outputTokens;
    if (request.logprobs !== undefined) this.tokenLogprobs = new TokenLogprobs((t) => model.detokenize([t as Token], true));
    this.detok = new IncrementalDetokenizer((tokens) => model.detokenize(tokens as Token[], true));
    this.stops = new StopMatcher(spec.stop);
    this.thought = new ThoughtTracker({ thinking: spec.thinking, startsInReasoning: spec.startsInReasoning, budget: spec.thinkingBudget });
    this.evaluateOptions = {
      ...spec.evaluateOptions(() => this.generated),
      // Read at every sampling: which grammar applies depends on where the output is.
      ...(spec.grammar && { grammarEvaluationState: () => this.grammarState(spec.grammar!) }),
    };
  }

  /**
   * The grammar constrains the answer, not the thought. While the output has not shown whether
   * it thinks first, it may open a thought or start the answer; an answer begun straight away
   * continues in that state, which has read its first tokens. After a thought it starts afresh.
   */
  private grammarState(grammars: AnswerGrammars): LlamaGrammarEvaluationState | undefined {
    if (this.thought.undecided) return (this.openingGrammar ??= this.grammarEvaluation(grammars.thoughtOrAnswer));
    if (!this.thought.answering) return undefined;
    if (this.openingGrammar && !this.thought.thoughtOpened) return this.openingGrammar;
    return (this.answerGrammar ??= this.grammarEvaluation(grammars.answer));
  }

  private grammarEvaluation(grammar: LlamaGrammar): LlamaGrammarEvaluationState {
    return new LlamaGrammarEvaluationState({ model: this.model, grammar });
  }

  /** After a preemption the generated tokens are evaluated again with the prompt; none of them is sent twice. */
  onPreempted(): void {
    this.hooks.onPreempted();
  }

  onAdmitted(slotId: number, reused: number): void {
    // A resumed request keeps its first admission's timings and prompt cache figure.
    if (this.request.preemptions === 0) {
      this.timings.admitted = performance.now();
      this.cachedTokens = reused;
    }
    this.hooks.onAdmitted(slotId, reused);
  }

  onToken({ token, eog, logprobs }: StepResult): boolean {
    if (!this.timings.firstToken) this.timings.firstToken = performance.now();
    // The model would end inside its thought, but the grammar requires an answer. llama.cpp's
    // grammars cover the thought and refuse end-of-generation until the answer is complete; here
    // the thought is free, so it is closed for the model and the answer sampled under the grammar.
    const unansweredGrammar = eog && this.spec.grammar !== undefined && !this.thought.answering && !this.thought.undecided;
    if (eog && !unansweredGrammar) {
      this.pushText(this.detok.flush());
      this.finish("stop");
      return true;
    }
    if (unansweredGrammar || this.thought.budgetSpent) return this.closeThought();
    return this.accept(token as Token, logprobs);
  }

  /**
   * Drops the sampled token (it would extend the thought or end without an answer) and closes
   * the thought instead, as the model would have; the answer is sampled after the closing tokens.
   */
  private closeThought(): boolean {
    this.request.inject(this.spec.thoughtClose);
    return this.spec.thoughtClose.some((t) => this.accept(t));
  }

  onError(err: unknown): void {
    this.hooks.onError(err);
    if (this.ended) return;
    this.ended = true;
    this.emit({ type: "failed", error: toEngineErrorInfo(err) });
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
    this.stopSequence ??= out.matched;
    return out.stopped;
  }

  private emitText(text: string): void {
    const logprobs = this.tokenLogprobs?.emitted(text.length);
    this.emit({ type: "text", index: this.request.index, text, tokens: this.unreportedTokens, ...(logprobs && { logprobs }) });
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
      index: this.request.index,
      finishReason,
      completionTokens: this.generated.length,
      reasoningTokens: this.thought.reasoningTokens,
      cachedTokens: this.cachedTokens,
      ...(this.stopSequence !== undefined && { stopSequence: this.stopSequence }),
      timings: {
        queueMs: admitted - enqueued,
        prefillMs: (firstToken || now) - admitted,
      },
    });
  }
}
