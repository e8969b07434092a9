/**
 * One native call per scheduler round (issue 10). The slots of a round submit their steps in the
 * same tick (the scheduler issues them together); the decoder puts them all into one llama batch
 * with node-llama-cpp's `initBatch` / `addToBatch` and makes one native call: the patched addon's
 * `decodeAndSampleBatch` (patches/node-llama-cpp+3.22.1.patch), which runs `llama_decode` and then
 * samples every sequence that asked for a token with its own sampler (chain, grammar, penalties,
 * token bias) in C++, and reads the raw log-probabilities of those that asked for them. A round
 * whose tokens exceed the context's batch size (several long prompt chunks at once) is cut into
 * batches, one call each, as llama.cpp's n_batch requires. The JS work of a round is per sequence
 * and per evaluated token, never per cached token.
 *
 * The prebuilt addon (per-sequence KV) has no such call: there the round is one `decodeBatch`
 * and one `sampleToken` per sampling sequence, as node-llama-cpp itself would do it, still
 * without its per-sequence generators and dispatch timers.
 *
 * node-llama-cpp's sequence state (`nextTokenIndex`, `contextTokens`) is advanced exactly as its
 * own evaluation does, so its sequence API (erasing ranges, copying a prefix) keeps working. The
 * scheduler runs one round at a time and touches sequences only between rounds, so no context
 * lock is taken (lora.ts relies on the same). Each round holds node-llama-cpp's dispose guard as
 * its own decodes do: `context.dispose()` waits for a round in flight, and a round submitted
 * after disposal began fails instead of reaching a freed native context.
 */
import type { LlamaContext, LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { readRawLogprobs, unpackRawLogprobs, type RawLogprobs } from "./logprobs.js";
import type { NativeContext, NativeSampler } from "./native-addon.js";

interface SequenceInternals {
  readonly _sequenceId: number;
  _nextTokenIndex: number;
  _contextTokens: Token[];
  _resolveSamplerConfig(options: SequenceEvaluateOptions): Record<string, unknown>;
  _takeIntervalCheckpointIfNeededAfterBatch(sequenceStateLength: number): Promise<void> | void;
  /** Fixed by the model and the context; each read asks the addon twice about the model's architecture. */
  readonly needsCheckpoints: boolean;
}

interface ContextInternals {
  _ctx: NativeContext;
  /**
   * node-llama-cpp's dispose guard: `context.dispose()` waits for every handle taken from it, and
   * once disposal has begun it refuses new handles (throws DisposedError). Its own decodes hold one.
   */
  _backendContextDisposeGuard: { createPreventDisposalHandle(): { dispose(): void } };
}

interface ModelInternals {
  _llama: { _bindings: { AddonSampler: new (model: unknown) => NativeSampler } };
  _model: unknown;
}

/** What a sampling step asks for: its sampler, and how many alternatives to report (undefined: no logprobs). */
export interface Sampling {
  sampler: NativeSampler;
  logprobs: number | undefined;
}

export interface Sampled {
  /** The sampled token; -1 when the sampler could pick none. Absent for a prefill chunk. */
  token?: number;
  logprobs?: RawLogprobs;
}

/** One round, for metrics and profiles. */
export interface DecodeCall {
  /** Sequences in the batch, and how many of them sampled a token. */
  sequences: number;
  sampled: number;
  tokens: number;
  /** Native calls the round took: 1 with the patched addon, unless the round's tokens exceed the batch size. */
  nativeCalls: number;
  /** From the patched addon: time in llama_decode and in sampling, microseconds. */
  decodeUs?: number;
  sampleUs?: number;
  /** From the first submitted step to the last step resolved, microseconds. */
  wallUs: number;
}

/** The part of a step that goes into one llama batch. */
interface BatchPart {
  step: Step;
  offset: number;
  length: number;
  /** The step's last token is in this part, and the step samples after it. */
  samples: boolean;
}

interface Step {
  seq: SequenceInternals;
  tokens: Token[];
  sample: Sampling | undefined;
  resolve(result: Sampled): void;
  reject(err: unknown): void;
}

const NO_LOGITS = new Uint32Array(0);
const decoders = new WeakMap<LlamaContext, RoundDecoder>();

export class RoundDecoder {
  private pending: Step[] = [];
  /** Whether the context's sequences take interval checkpoints (recurrent, hybrid or sliding-window models), read once. */
  private checkpoints: boolean | undefined;
  private readonly ctx: NativeContext;
  private readonly observers: Array<(call: DecodeCall) => void> = [];
  /** Greedy sampler for reading raw log-probabilities on the prebuilt addon. */
  private greedy: NativeSampler | undefined;

  private constructor(
    private readonly context: LlamaContext,
    private readonly model: LlamaModel,
  ) {
    this.ctx = (context as unknown as ContextInternals)._ctx;
  }

  /** The decoder of a context: every sequence of a context shares its batches. */
  static of(context: LlamaContext): RoundDecoder {
    let decoder = decoders.get(context);
    if (!decoder) decoders.set(context, (decoder = new RoundDecoder(context, context.model)));
    return decoder;
  }

  /** Whether a round is one native call (the patched addon), rather than a decode plus one call per sampling sequence. */
  get oneCall(): boolean {
    return typeof this.ctx.decodeAndSampleBatch === "function";
  }

  observe(observer: (call: DecodeCall) => void): void {
    this.observers.push(observer);
  }

  newSampler(): NativeSampler {
    const { _llama, _model } = this.model as unknown as ModelInternals;
    return new _llama._bindings.AddonSampler(_model);
  }

  /** Gives `sampler` the sampling options as node-llama-cpp resolves them before each token (penalty tokens, grammar state, token bias). */
  configure(sampler: NativeSampler, sequence: LlamaContextSequence, options: SequenceEvaluateOptions): void {
    sampler.applyConfig((sequence as unknown as SequenceInternals)._resolveSamplerConfig(options));
  }

  /**
   * Queues one sequence's step: `tokens` to evaluate and, with `sample`, the token to sample after
   * the last of them. Every step submitted in the same tick goes into the same batch.
   */
  submit(sequence: LlamaContextSequence, tokens: Token[], sample?: Sampling): Promise<Sampled> {
    return new Promise((resolve, reject) => {
      const step: Step = { seq: sequence as unknown as SequenceInternals, tokens, sample, resolve, reject };
      if (this.pending.push(step) === 1) queueMicrotask(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const started = performance.now();
    const steps = this.pending.splice(0);
    const round: Step[] = [];
    for (const step of steps) {
      const end = step.seq._nextTokenIndex + step.tokens.length;
      if (step.tokens.length === 0 || end > this.context.contextSize) {
        step.reject(new Error(`a step of ${step.tokens.length} tokens does not fit the sequence (${step.seq._nextTokenIndex} of ${this.context.contextSize} cells used)`));
      } else round.push(step);
    }
    if (round.length === 0) return;
    const results = new Map<Step, Sampled>();
    const call: Omit<DecodeCall, "wallUs"> = {
      sequences: round.length,
      sampled: round.filter((s) => s.sample).length,
      tokens: round.reduce((n, s) => n + s.tokens.length, 0),
      nativeCalls: 0,
    };
    try {
      const preventDisposal = (this.context as unknown as ContextInternals)._backendContextDisposeGuard.createPreventDisposalHandle();
      try {
        for (const batch of this.batches(round)) {
          const timing = await this.decode(batch, results);
          call.nativeCalls += timing.nativeCalls;
          if (timing.decodeUs !== undefined) call.decodeUs = (call.decodeUs ?? 0) + timing.decodeUs;
          if (timing.sampleUs !== undefined) call.sampleUs = (call.sampleUs ?? 0) + timing.sampleUs;
        }
        for (const step of round) {
          step.seq._nextTokenIndex += step.tokens.length;
          for (const token of step.tokens) step.seq._contextTokens.push(token);
          // As node-llama-cpp's batch does after each sequence's tokens, for the models that need checkpoints.
          if (!(this.checkpoints ??= step.seq.needsCheckpoints)) continue;
          const checkpoint = step.seq._takeIntervalCheckpointIfNeededAfterBatch(step.seq._nextTokenIndex + 1);
          if (checkpoint) await checkpoint;
        }
      } finally {
        preventDisposal.dispose();
      }
    } catch (err) {
      for (const step of round) step.reject(err);
      return;
    }
    for (const step of round) step.resolve(results.get(step) ?? {});
    const wallUs = Math.round((performance.now() - started) * 1000);
    for (const observer of this.observers) observer({ ...call, wallUs });
  }

  /**
   * The round in llama batches of at most the context's batch size: one, unless several long
   * prompt chunks share the round. A step cut across two batches samples in the second.
   */
  private batches(round: Step[]): BatchPart[][] {
    const size = this.context.batchSize;
    const batches: BatchPart[][] = [[]];
    let room = size;
    for (const step of round) {
      for (let offset = 0; offset < step.tokens.length; ) {
        if (room === 0) {
          batches.push([]);
          room = size;
        }
        const length = Math.min(room, step.tokens.length - offset);
        batches.at(-1)!.push({ step, offset, length, samples: step.sample !== undefined && offset + length === step.tokens.length });
        offset += length;
        room -= length;
      }
    }
    return batches;
  }

  /** One llama batch: its decode and the sampling of the steps that end in it, into `results`. */
  private async decode(batch: BatchPart[], results: Map<Step, Sampled>): Promise<{ nativeCalls: number; decodeUs?: number; sampleUs?: number }> {
    this.ctx.initBatch(batch.reduce((n, p) => n + p.length, 0));
    const sampling: Step[] = [];
    const indexes: number[] = [];
    for (const { step, offset, length, samples } of batch) {
      const tokens = Uint32Array.from(step.tokens.slice(offset, offset + length));
      const [index] = this.ctx.addToBatch(step.seq._sequenceId, step.seq._nextTokenIndex + offset, tokens, samples ? Uint32Array.of(length - 1) : NO_LOGITS);
      if (samples) {
        sampling.push(step);
        indexes.push(index!);
      }
    }
    if (this.ctx.decodeAndSampleBatch) {
      const [tokens, logprobs, decodeUs, sampleUs] = await this.ctx.decodeAndSampleBatch(
        sampling.map((s) => s.sample!.sampler),
        Int32Array.from(indexes),
        Int32Array.from(sampling, (s) => s.sample!.logprobs ?? -1),
      );
      for (const [i, step] of sampling.entries()) {
        const raw = logprobs[i];
        results.set(step, { token: tokens[i]!, ...(raw && { logprobs: unpackRawLogprobs(raw) }) });
      }
      return { nativeCalls: 1, decodeUs, sampleUs };
    }
    await this.ctx.decodeBatch();
    const tokens = await Promise.all(sampling.map((s, i) => this.ctx.sampleToken(indexes[i]!, s.sample!.sampler)));
    let nativeCalls = 1 + sampling.length;
    for (const [i, step] of sampling.entries()) {
      const token = tokens[i]!;
      const top = step.sample!.logprobs;
      if (top === undefined || token < 0) {
        results.set(step, { token });
        continue;
      }
      // One greedy sampler for all reads: they run one after another.
      const greedy = (this.greedy ??= this.greedySampler());
      results.set(step, { token, logprobs: await readRawLogprobs(this.ctx, greedy, indexes[i]!, token, top) });
      nativeCalls++;
    }
    return { nativeCalls };
  }

  private greedySampler(): NativeSampler {
    const sampler = this.newSampler();
    sampler.applyConfig({});
    return sampler;
  }
}
