/**
 * One request as the scheduler keeps it, made by the engine from the wire request (vLLM v1's
 * `Request`): what it evaluates (prompt, adapter set, logprobs, tokens so far) and the
 * scheduler's state of it (status, arrival, slot, preemptions). What becomes of its sampled
 * tokens is its sink's business: a `Generation` in the engine, a fake in unit tests.
 */
import type { SequenceEvaluateOptions, Token } from "node-llama-cpp";
import type { RawLogprobs } from "./logprobs.js";
import type { GenerationEvent } from "./types.js";

export interface StepResult {
  token: number;
  /** End-of-generation token (or the evaluator ended on its own). */
  eog: boolean;
  /** The token's log-probabilities, when the request asked for them. */
  logprobs?: RawLogprobs;
}

/**
 * waiting: queued, never admitted; prefill: on a slot, its tokens not all evaluated yet; decode:
 * on a slot, sampling; preempted: queued again after its slot was taken back; finished: released.
 */
export type RequestStatus = "waiting" | "prefill" | "decode" | "preempted" | "finished";

/** What the scheduler tells a request's consumer, and how its tokens are sampled. */
export interface RequestSink {
  /** Sampling options (grammar included); read when a slot starts evaluating the request. */
  readonly evaluateOptions: SequenceEvaluateOptions;
  onAdmitted(slotId: number, reusedTokens: number): void;
  /** Returns true when the request is finished (stop, length, stop string). */
  onToken(result: StepResult): boolean;
  /** The slot was taken back (KV pool exhausted); the request is queued again to resume from tokens(). */
  onPreempted(): void;
  onError(err: unknown): void;
  /** Called once the slot is free again (or the queued request dropped), whatever the outcome. */
  onReleased(): void;
}

export interface RequestParams {
  id: number;
  /** Its choice among the wire request's `n` (0 when alone). */
  index?: number;
  /**
   * The first choice of the same wire request, for the others: it evaluates the prompt, and a
   * child waits for that and forks its KV cache (llama-server's parent and child tasks).
   */
  parent?: Request;
  prompt: readonly number[];
  /** The LoRA adapter set, as a canonical key (lora.ts adapterKey); "" or absent = none. */
  adapterKey?: string;
  /** Alternatives to report with each sampled token's log-probability; undefined = no logprobs. */
  logprobs?: number;
}

export class Request {
  readonly id: number;
  readonly index: number;
  readonly parent: Request | undefined;
  readonly prompt: readonly number[];
  readonly adapterKey: string;
  readonly logprobs: number | undefined;
  readonly sink: RequestSink;
  status: RequestStatus = "waiting";
  /** Arrival order, set on submit: the youngest request is preempted first, and requeued by age. */
  arrival = 0;
  /** The slot it runs on; undefined while queued. */
  slotId: number | undefined;
  preemptions = 0;
  /** Set when the client went away or the deadline passed; the scheduler frees the slot next round. */
  cancelled = false;
  /** Completion tokens so far, injected ones included: evaluated again after a preemption. */
  readonly outputTokens: number[] = [];
  private injection: Token[] | undefined;

  /** `sink` makes the request's consumer, which may keep the request (its tokens so far). */
  constructor(params: RequestParams, sink: (request: Request) => RequestSink) {
    this.id = params.id;
    this.index = params.index ?? 0;
    this.parent = params.parent;
    this.prompt = params.prompt;
    this.adapterKey = params.adapterKey ?? "";
    this.logprobs = params.logprobs;
    this.sink = sink(this);
  }

  /**
   * Tokens the KV cache must hold before the next token is sampled: the prompt and, after a
   * preemption, the tokens generated before it, so sampling resumes where it stopped.
   */
  tokens(): readonly number[] {
    return this.preemptions === 0 ? this.prompt : [...this.prompt, ...this.outputTokens];
  }

  /**
   * Tokens to evaluate in place of the token just sampled (which is then dropped), already in
   * outputTokens; they go in the same step, so the slot still advances once per round.
   */
  inject(tokens: readonly Token[]): void {
    this.injection = [...tokens];
  }

  /** Tokens the next decode step evaluates: the injection's, else 1 (the token just sampled). */
  decodeStepTokens(): number {
    return this.injection?.length ?? 1;
  }

  takeInjection(): Token[] | undefined {
    const tokens = this.injection;
    this.injection = undefined;
    return tokens;
  }

  /** Taken off its slot and queued again; tokens to inject were accepted already: they are part of tokens() now. */
  preempt(): void {
    this.status = "preempted";
    this.slotId = undefined;
    this.preemptions++;
    this.injection = undefined;
  }
}

/**
 * The events of a wire request's choices as its one stream: each choice's text and done events
 * pass (they carry its index); the first failure is the request's one `failed` event, and the
 * other choices are cancelled and heard no more.
 */
export function choiceEvents(emit: (event: GenerationEvent) => void, choices: readonly Request[]): (event: GenerationEvent) => void {
  let failed = false;
  return (event) => {
    if (failed) return;
    if (event.type === "failed") {
      failed = true;
      for (const choice of choices) choice.cancelled = true;
    }
    emit(event);
  };
}
