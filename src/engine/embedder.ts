/**
 * Sentence embeddings for a model whose GGUF declares a pooling type (`<arch>.pooling_type`,
 * read by llama.cpp when the context is created): llama.cpp pools the final hidden states
 * (after the output norm) as the model declares, and this file L2-normalizes the result.
 *
 * node-llama-cpp 3.22 cannot put several inputs into one decode: LlamaEmbeddingContext owns a
 * single sequence, evaluates one input at a time under a lock, and its addon reads the pooled
 * vector of sequence 0 only. So inputs are queued here and evaluated one per decode, taking
 * turns across requests so a request with many inputs does not hold back a request with one.
 * Each decode runs on a libuv thread, so the worker's event loop stays free meanwhile.
 */
import type { GgufMetadata, LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import { EngineError } from "./errors.js";
import type { EmbeddingPooling, EmbeddingRequest, EmbeddingResult } from "./types.js";

/** llama.cpp's enum llama_pooling_type (include/llama.h); 0 is none, 4 is rank (rerankers). */
const POOLING_NAMES: Record<number, EmbeddingPooling> = { 1: "mean", 2: "cls", 3: "last" };

/** The pooling a GGUF declares, or undefined for a model without sentence embeddings. */
export function declaredPooling(metadata: GgufMetadata): EmbeddingPooling | undefined {
  const sections = metadata as unknown as Record<string, Record<string, unknown> | undefined>;
  const arch = metadata.general?.architecture;
  const id = typeof arch === "string" ? sections[arch]?.pooling_type : undefined;
  return typeof id === "number" ? POOLING_NAMES[id] : undefined;
}

/** What the queue needs of node-llama-cpp's LlamaEmbeddingContext (a fake in unit tests). */
export interface EmbeddingEvaluator {
  getEmbeddingFor(tokens: Token[]): Promise<{ vector: readonly number[] }>;
}

interface Job {
  inputs: Token[][];
  vectors: number[][];
  promptTokens: number;
  cancelled: boolean;
  resolve(result: EmbeddingResult): void;
  reject(err: unknown): void;
}

export class EmbeddingQueue {
  /** Jobs by request id; the order of `turns` is whose input is evaluated next. */
  private readonly jobs = new Map<number, Job>();
  private readonly turns: Job[] = [];
  private running = false;

  constructor(private readonly evaluator: EmbeddingEvaluator) {}

  run(id: number, inputs: Token[][], promptTokens: number): Promise<EmbeddingResult> {
    return new Promise((resolve, reject) => {
      const job: Job = { inputs, vectors: [], promptTokens, cancelled: false, resolve, reject };
      this.jobs.set(id, job);
      this.turns.push(job);
      void this.pump();
    }).finally(() => this.jobs.delete(id)) as Promise<EmbeddingResult>;
  }

  /** Drops a request's remaining inputs (its client went away or its deadline passed). */
  cancel(id: number): void {
    const job = this.jobs.get(id);
    if (!job || job.cancelled) return;
    job.cancelled = true;
    job.reject(new EngineError({ kind: "client_closed" }));
  }

  /** Requests with inputs still to evaluate. */
  get pending(): number {
    return this.jobs.size;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let job = this.turns.shift(); job; job = this.turns.shift()) {
        if (job.cancelled) continue;
        try {
          const { vector } = await this.evaluator.getEmbeddingFor(job.inputs[job.vectors.length]!);
          job.vectors.push(l2Normalize(vector));
        } catch (err) {
          job.reject(err);
          continue;
        }
        if (job.vectors.length === job.inputs.length) job.resolve({ vectors: job.vectors, promptTokens: job.promptTokens });
        else this.turns.push(job);
      }
    } finally {
      this.running = false;
    }
  }
}

/** Unit length, as OpenAI's vectors have; llama.cpp returns the pooled state unnormalized. */
export function l2Normalize(vector: readonly number[]): number[] {
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  return norm > 0 ? vector.map((x) => x / norm) : vector.map(() => 0);
}

export interface EmbedderOptions {
  /** model.contextSize: tokens one input may hold (with any BOS/EOS), capped at the training context. */
  contextSize: number;
  /** model.batchSize: tokens per decode, where the pooling allows an input to span several. */
  batchSize: number;
  threads: number;
  vocabularySize: number;
}

/**
 * The embedding context's size and micro-batch. llama.cpp computes logits for every token of an
 * embedding context (n_vocab floats each: 1.2 MB of output and compute buffers per token for
 * Qwen3's vocabulary), so the micro-batch sets the memory. It also pools each micro-batch on its
 * own: mean and cls pooling need the whole input in one, while last pooling of a causal model
 * is right from the last micro-batch (the earlier ones are in the KV cache), so long inputs are
 * evaluated in model.batchSize pieces.
 */
export function embeddingContextShape(pooling: EmbeddingPooling, options: { contextSize: number; batchSize: number }, trainContextSize: number) {
  const contextSize = Math.min(options.contextSize, trainContextSize);
  return { contextSize, batchSize: pooling === "last" ? Math.min(contextSize, options.batchSize) : contextSize };
}

/** One embedding context (one sequence) for the life of the worker, and the queue in front of it. */
export class Embedder {
  private constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaEmbeddingContext,
    private readonly queue: EmbeddingQueue,
    /** Inputs must stay below this many tokens (node-llama-cpp's bound). */
    readonly contextSize: number,
    private readonly vocabularySize: number,
  ) {}

  /** llama.cpp applies the pooling the GGUF declares when it creates the context. */
  static async create(model: LlamaModel, pooling: EmbeddingPooling, options: EmbedderOptions): Promise<Embedder> {
    const { contextSize, batchSize } = embeddingContextShape(pooling, options, model.trainContextSize);
    const context = await model.createEmbeddingContext({
      contextSize,
      batchSize,
      threads: options.threads,
      // checkMemoryBudget checked this context against the budget before the model loaded;
      // node-llama-cpp's own check against free memory is not ours to apply.
      ignoreMemorySafetyChecks: true,
    });
    return new Embedder(model, context, new EmbeddingQueue(context), contextSize, options.vocabularySize);
  }

  /** Validates and tokenizes every input first, so a bad one fails the request before any decode. */
  embed(id: number, request: EmbeddingRequest): Promise<EmbeddingResult> {
    const inputs = request.input.map((input, index) => this.tokens(input, index));
    const lengths = inputs.map((tokens, index) => {
      const length = this.context.calculateInputLength(tokens);
      if (length >= this.contextSize) {
        throw new EngineError({ kind: "input_too_long", index, inputTokens: length, contextSize: this.contextSize });
      }
      return length;
    });
    return this.queue.run(id, inputs, lengths.reduce((a, b) => a + b, 0));
  }

  cancel(id: number): void {
    this.queue.cancel(id);
  }

  /** Requests with inputs still to evaluate. */
  get pending(): number {
    return this.queue.pending;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
  }

  /** Text is tokenized as plain text (no special tokens); token ids are used as given. */
  private tokens(input: string | number[], index: number): Token[] {
    if (typeof input === "string") return this.model.tokenize(input, false);
    // llama.cpp does not bound-check token ids: an id past the vocabulary would read out of bounds.
    const bad = input.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.vocabularySize);
    if (bad !== -1) {
      throw new EngineError({ kind: "invalid_token", param: "input", at: `input[${index}][${bad}]`, vocabularySize: this.vocabularySize });
    }
    return input as Token[];
  }
}
