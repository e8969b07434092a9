/**
 * The inference engine inside a worker process: loads the model, renders prompts with the
 * GGUF's own chat template, admits requests and runs them through the scheduler.
 */
import os from "node:os";
import { statSync } from "node:fs";
import {
  LlamaLogLevel,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type { WorkerInit } from "../worker/protocol.js";
import type {
  EmbeddingRequest,
  EmbeddingResult,
  EngineStatus,
  GenerationEvent,
  GenerationRequest,
  ModelInfo,
  SamplingParams,
  StartedInfo,
  TextOp,
  TextOpResult,
} from "./types.js";
import { ApiError, contextLengthExceeded, invalidRequest, toApiError, type SerializedApiError } from "../openai/errors.js";
import { ChatTemplateError, renderChatTemplate, templateFacts, type TemplateFacts } from "../chat/template.js";
import { Scheduler } from "./scheduler.js";
import { LlamaSlot } from "./llama-slot.js";
import { buildEvaluateOptions, resolveSampling } from "./sampling.js";
import { GrammarCache, type AnswerGrammars } from "./grammar.js";
import { Generation } from "./generation.js";
import { checkMemoryBudget } from "../models/memory-budget.js";
import { loadLlamaBackend } from "./backend.js";
import { KvPagePool } from "./kv/page-pool.js";
import { kvLayout } from "./kv/layout.js";
import { declaredPooling, Embedder, notAGenerativeModel, notAnEmbeddingModel } from "./embedder.js";

const KV_TYPES = { f16: "F16", q8_0: "Q8_0" } as const;

/** What Qwen3 writes to end a thought; injected when the thinking budget is spent. */
const THOUGHT_CLOSE = "\n</think>\n\n";

export type Emit = (event: GenerationEvent) => void;
export type EngineLog = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export class Engine {
  private readonly tasks = new Map<number, Generation>();
  /** Requests between submit() and the scheduler (their grammar is being built). */
  private readonly admitting = new Map<number, { cancelled: boolean }>();

  private constructor(
    private readonly init: WorkerInit,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    /** Absent for an embedding model, which has no chat sequences. */
    private readonly context: LlamaContext | undefined,
    private readonly scheduler: Scheduler,
    private readonly rounds: number[],
    private readonly template: string | undefined,
    private readonly facts: TemplateFacts | undefined,
    private readonly grammars: GrammarCache,
    private readonly thoughtClose: Token[],
    /** Only for models whose GGUF declares a pooling type. */
    private readonly embedder: Embedder | undefined,
    readonly info: ModelInfo,
    private readonly log: EngineLog,
  ) {}

  static async load(init: WorkerInit, log: EngineLog): Promise<Engine> {
    const started = performance.now();
    const threads = init.model.threads > 0 ? init.model.threads : os.availableParallelism();
    const backend = await loadLlamaBackend(init.model.kvPool, {
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text) log(level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? "error" : "debug", text);
      },
    });
    if (backend.notice) log("warn", backend.notice);
    const { llama } = backend;
    const unified = backend.unifiedKv;
    await checkMemoryBudget(llama, init.modelPath, init.model);
    const model = await llama.loadModel({ modelPath: init.modelPath });
    // An embedding model serves /v1/embeddings only, as llama-server started with --embeddings
    // does: chat sequences would reserve KV memory for generations it was not trained to make.
    // Its one embedding context is created here, not on first use, so a context that does not
    // fit in memory stops start-up with one clear line instead of failing a request later.
    const pooling = declaredPooling(model.fileInfo.metadata);
    const embedder = pooling
      ? await Embedder.create(model, pooling, { contextSize: init.model.contextSize, batchSize: init.model.batchSize, threads, vocabularySize: vocabularySize(model) })
      : undefined;
    const { context, slots, kv, requestContext, poolCells } = embedder
      ? { context: undefined, slots: [], kv: new KvPagePool(init.model.kvPageTokens, 0, unified), requestContext: embedder.contextSize, poolCells: 0 }
      : await createSequences(model, init, unified, threads);
    const template = model.fileInfo.metadata.tokenizer?.chat_template as string | undefined;
    const facts = template ? templateFacts(template) : undefined;
    const info: ModelInfo = {
      id: init.modelId,
      path: init.modelPath,
      contextSize: requestContext,
      sequences: slots.length,
      kvPool: unified ? "unified" : "per-sequence",
      kvPoolTokens: poolCells,
      addonBuild: backend.build,
      trainContextSize: model.trainContextSize,
      chatTemplate: template !== undefined,
      supportsThinking: facts?.supportsThinking ?? false,
      pooling: pooling ?? null,
      sizeBytes: statSync(init.modelPath).size,
      loadMs: Math.round(performance.now() - started),
    };
    log("info", "model loaded", { threads, ...info });
    const rounds: number[] = [];
    const scheduler = new Scheduler(slots, {
      kv,
      prefixReuse: init.model.prefixReuse,
      onRound: (tokens) => {
        // Bounded: a worker nobody scrapes must not grow without limit.
        if (rounds.length < 100_000) rounds.push(tokens);
      },
    });
    const thoughtClose = model.tokenize(THOUGHT_CLOSE, true);
    return new Engine(init, llama, model, context, scheduler, rounds, template, facts, new GrammarCache(llama), thoughtClose, embedder, info, log);
  }

  submit(id: number, request: GenerationRequest, emit: Emit): void {
    if (!this.context) {
      emit({ type: "failed", error: notAGenerativeModel(this.info.id).toJSON() });
      return;
    }
    const admission = { cancelled: false };
    this.admitting.set(id, admission);
    const grammar = request.grammar ? this.grammars.get(request.grammar) : Promise.resolve(undefined);
    grammar
      .then((g) => {
        const { task, info } = this.admit(id, request, g, emit);
        this.checkBackpressure(task.prompt.length);
        task.cancelled = admission.cancelled;
        this.tasks.set(id, task);
        emit({ type: "started", info });
        this.scheduler.submit(task);
      })
      .catch((err: unknown) => {
        const apiErr = toApiError(err);
        if (!(err instanceof ApiError)) this.log("error", "request failed before admission", { id, err: String(err) });
        emit({ type: "failed", error: apiErr.toJSON() });
      })
      .finally(() => this.admitting.delete(id));
  }

  /**
   * A bounded wait queue: past it a request gets a 429 with Retry-After at once instead of
   * waiting without end (what llama-server and, until recently, vLLM do).
   */
  private checkBackpressure(promptTokens: number): void {
    const { maxQueuedRequests, maxQueuedTokens } = this.init.limits;
    const { queued, queuedTokens } = this.scheduler.snapshot();
    const overRequests = maxQueuedRequests > 0 && queued >= maxQueuedRequests;
    const overTokens = maxQueuedTokens > 0 && queued > 0 && queuedTokens + promptTokens > maxQueuedTokens;
    if (overRequests || overTokens) {
      throw new ApiError(
        429,
        "rate_limit_error",
        `The server is at capacity: ${queued} requests (${queuedTokens} prompt tokens) are already waiting for a sequence; retry shortly`,
        { code: "server_busy", headers: { "retry-after": "2" } },
      );
    }
  }

  /** `drainRounds` hands over (and forgets) the per-round token counts gathered since the last drain. */
  status(drainRounds = false): EngineStatus {
    const snapshot: EngineStatus = this.scheduler.snapshot();
    // Embedding requests take turns on the one embedding sequence: all of them are in progress.
    if (this.embedder) snapshot.running += this.embedder.pending;
    if (drainRounds) snapshot.roundTokens = this.rounds.splice(0);
    return snapshot;
  }

  cancel(id: number): void {
    const admission = this.admitting.get(id);
    if (admission) admission.cancelled = true;
    const task = this.tasks.get(id);
    if (task) task.cancelled = true;
    this.embedder?.cancel(id);
  }

  async dispose(): Promise<void> {
    await this.embedder?.dispose();
    await this.context?.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }

  /** Tokenizer and template work for /tokenize, /detokenize and /apply-template; no sequence needed. */
  textOp(op: TextOp): { result: TextOpResult } | { error: SerializedApiError } {
    try {
      return { result: this.runTextOp(op) };
    } catch (err) {
      return { error: this.failure(err, "text operation failed", { kind: op.kind }) };
    }
  }

  /** /v1/embeddings: a 400 for a model without pooling, else queued in the embedder. */
  async embed(id: number, request: EmbeddingRequest): Promise<{ result: EmbeddingResult } | { error: SerializedApiError }> {
    try {
      if (!this.embedder) throw notAnEmbeddingModel(this.info.id, this.model);
      return { result: await this.embedder.embed(id, request) };
    } catch (err) {
      return { error: this.failure(err, "embedding failed", { id, requestId: request.requestId }) };
    }
  }

  /** Client errors go back as they are; anything else is logged and answered as a 500. */
  private failure(err: unknown, msg: string, fields: Record<string, unknown>): SerializedApiError {
    if (!(err instanceof ApiError)) this.log("error", msg, { ...fields, err: String(err) });
    return toApiError(err).toJSON();
  }

  private runTextOp(op: TextOp): TextOpResult {
    switch (op.kind) {
      case "tokenize": {
        const bos = op.addSpecial ? this.model.tokens.bos : null;
        const tokens = [...(bos === null ? [] : [bos]), ...this.model.tokenize(op.text, op.parseSpecial)] as number[];
        return op.withPieces
          ? { kind: "tokenize", tokens, pieces: tokens.map((t) => this.model.detokenize([t as Token], true)) }
          : { kind: "tokenize", tokens };
      }
      case "detokenize":
        this.checkTokenIds(op.tokens, "tokens");
        return { kind: "detokenize", content: this.model.detokenize(op.tokens as Token[], true) };
      case "apply_template":
        return { kind: "apply_template", prompt: this.renderPrompt(op.request, this.thinkingFor(op.request)) };
    }
  }

  /** llama.cpp does not bound-check token ids: an id past the vocabulary would read out of bounds. */
  private checkTokenIds(tokens: readonly number[], param: string): void {
    const vocab = vocabularySize(this.model);
    const bad = tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== -1) throw invalidRequest(`${param}[${bad}] is not a token id of this model (0 to ${vocab - 1})`, param, "invalid_token");
  }

  /** A completion's prompt as is: text with its special tokens parsed and the BOS token the model wants, or token ids. */
  private rawPromptTokens(prompt: string | number[]): Token[] {
    if (typeof prompt !== "string") {
      this.checkTokenIds(prompt, "prompt");
      return prompt as Token[];
    }
    const { bos, shouldPrependBosToken } = this.model.tokens;
    return [...(shouldPrependBosToken && bos !== null ? [bos] : []), ...this.model.tokenize(prompt, true)];
  }

  /** A template without the switch but whose generation prompt opens <think> always thinks. */
  private thinkingFor(request: GenerationRequest): boolean {
    return this.facts?.supportsThinking
      ? (request.enableThinking ?? this.init.generation.enableThinking)
      : (this.facts?.generationOpensThink ?? false);
  }

  private renderPrompt(request: GenerationRequest, thinking: boolean): string {
    if (!this.template) {
      throw invalidRequest("This model has no chat template, which chat completions need", "messages", "chat_template_missing");
    }
    try {
      return renderChatTemplate(this.template, {
        messages: request.messages,
        tools: request.tools,
        addGenerationPrompt: true,
        enableThinking: thinking,
        extraKwargs: request.templateKwargs,
      });
    } catch (err) {
      // The template's own raise_exception() rejects the conversation (e.g. roles out of order): the client's fault.
      if (err instanceof ChatTemplateError && err.kind === "raised") throw invalidRequest(err.message, "messages", "invalid_conversation");
      throw err;
    }
  }

  private admit(id: number, request: GenerationRequest, grammar: AnswerGrammars | undefined, emit: Emit): { task: Generation; info: StartedInfo } {
    const raw = request.prompt !== undefined;
    const thinking = !raw && this.thinkingFor(request);
    // A grammar leaves the prompt as the template renders it: the model decides whether it thinks
    // first, and the grammar allows either (Generation.grammarState). Opening the thought in the
    // prompt instead would put a model that answers at once inside a thought the grammar never reaches.
    const startsInReasoning = thinking && (this.facts?.generationOpensThink ?? false);
    const promptText = raw ? undefined : this.renderPrompt(request, thinking);
    const prompt = promptText === undefined ? this.rawPromptTokens(request.prompt!) : this.model.tokenize(promptText, true);
    const param = raw ? "prompt" : "messages";
    if (prompt.length === 0) throw invalidRequest("The prompt is empty: it must hold at least one token", param);
    const contextSize = this.info.contextSize;
    if (request.maxTokens !== undefined && prompt.length + request.maxTokens > contextSize) {
      throw contextLengthExceeded(contextSize, prompt.length, request.maxTokens, param);
    }
    if (prompt.length >= contextSize) throw contextLengthExceeded(contextSize, prompt.length, 1, param);
    const maxPrompt = this.init.limits.maxPromptTokens;
    if (maxPrompt > 0 && prompt.length > maxPrompt) {
      throw invalidRequest(`The prompt has ${prompt.length} tokens; this server accepts at most ${maxPrompt} (limits.maxPromptTokens)`, param, "limit_exceeded");
    }
    const maxTokens = request.maxTokens ?? Math.min(this.init.generation.defaultMaxTokens, contextSize - prompt.length);
    const sampling: Required<SamplingParams> = resolveSampling(request.sampling, thinking ? this.init.generation.samplingThinking : this.init.generation.samplingNonThinking);
    this.log("debug", "prompt rendered", { id, requestId: request.requestId, prompt: promptText ?? request.prompt });

    const task = new Generation(
      {
        prompt,
        maxTokens,
        stop: request.stop,
        thinking,
        startsInReasoning,
        thinkingBudget: request.thinkingBudget ?? this.init.generation.thinkingBudget,
        grammar,
        evaluateOptions: (recent) => buildEvaluateOptions(sampling, recent),
        thoughtClose: this.thoughtClose,
        logprobs: request.logprobs,
      },
      this.model,
      emit,
      {
        onAdmitted: (slotId, reused) => this.log("debug", "admitted", { id, slotId, promptTokens: prompt.length, reused }),
        onPreempted: () => this.log("debug", "preempted: the KV pool is full; the request resumes when pages free up", { id }),
        onError: (err) => this.log("error", "generation failed", { id, err: String(err) }),
        onReleased: () => this.tasks.delete(id),
      },
    );
    const info: StartedInfo = {
      promptTokens: prompt.length,
      thinking,
      startsInReasoning,
    };
    return { task, info };
  }
}

function vocabularySize(model: LlamaModel): number {
  const embeddings = model.fileInfo.tensorInfo?.find((t) => t.name === "token_embd.weight");
  return Number(embeddings?.dimensions[1] ?? 0);
}

/**
 * The chat sequences: one context holding `model.sequences` sequences over a unified or a
 * per-sequence KV pool, its page table, and a slot per sequence.
 */
async function createSequences(model: LlamaModel, init: WorkerInit, unified: boolean, threads: number) {
  const { sequences, contextSize, kvPageTokens } = init.model;
  const context = await model.createContext({
    sequences,
    contextSize: kvLayout(init.model).contextPerSequence,
    batchSize: init.model.batchSize,
    threads,
    experimentalKvCacheKeyType: KV_TYPES[init.model.kvCacheType],
    experimentalKvCacheValueType: KV_TYPES[init.model.kvCacheType],
    ...(unified && { kvUnified: true }),
    // checkMemoryBudget estimated this very context before the model loaded; node-llama-cpp's own
    // check would simulate it again (a second vocabulary load and allocation pass) at start-up.
    ignoreMemorySafetyChecks: true,
  });
  if (unified && !context.kvUnified) throw new Error("the unified-KV addon loaded but the context did not get a unified KV pool");
  // One pool: a sequence may grow into all of it; otherwise into its own share. A request
  // stays bounded by contextSize in both.
  const requestContext = Math.min(contextSize, context.contextSize);
  const poolCells = unified ? context.contextSize : context.contextSize * sequences;
  // Per-sequence regions hold whole pages each: no page straddles two sequences.
  const totalPages = unified ? Math.floor(poolCells / kvPageTokens) : sequences * Math.floor(context.contextSize / kvPageTokens);
  const kv = new KvPagePool(kvPageTokens, totalPages, unified);
  const slots = Array.from(
    { length: sequences },
    (_, i) =>
      new LlamaSlot(i, context.getSequence({ contextShift: { size: 0 } }), model, Math.min(init.model.prefillChunk, init.model.batchSize)),
  );
  return { context, slots, kv, requestContext, poolCells };
}
