/**
 * The inference engine inside a worker process: loads the model, renders prompts with the
 * GGUF's own chat template, admits requests and runs them through the scheduler.
 */
import { statSync } from "node:fs";
import {
  LlamaLogLevel,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import type {
  EmbeddingRequest,
  EmbeddingResult,
  EngineOptions,
  EngineStatus,
  GenerationEvent,
  GenerationRequest,
  ModelInfo,
  SamplingParams,
  StartedInfo,
  TextOp,
  TextOpResult,
} from "./types.js";
import { EngineError, toEngineErrorInfo, type EngineErrorInfo, type PromptParam } from "./errors.js";
import { ChatTemplateError, renderChatTemplate, templateFacts, type TemplateFacts } from "../chat/template.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";
import { LlamaSlot } from "./llama-slot.js";
import { RoundDecoder } from "./round-decoder.js";
import { buildEvaluateOptions, resolveSampling } from "./sampling.js";
import { GrammarCache, type AnswerGrammars } from "./grammar.js";
import { Generation } from "./generation.js";
import { choiceEvents, Request } from "./request.js";
import { checkMemoryBudget, modelHeader } from "./memory-budget.js";
import { loadLlamaBackend } from "./backend.js";
import { prepareRepackCache, repackCacheMapped, useRepackCache } from "./repack-cache.js";
import { KvPagePool } from "./kv/page-pool.js";
import { kvLayout } from "./kv/layout.js";
import { declaredPooling, Embedder } from "./embedder.js";
import { adapterKey, LoraAdapters } from "./lora.js";
import { decodeThreads, usableCores } from "./threads.js";

const KV_TYPES = { f16: "F16", q8_0: "Q8_0" } as const;

/** What Qwen3 writes to end a thought; injected when the thinking budget is spent. */
const THOUGHT_CLOSE = "\n</think>\n\n";

export type Emit = (event: GenerationEvent) => void;
export type EngineLog = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export class Engine {
  /** The choices of each wire request in the scheduler (queued or running), by IPC id. */
  private readonly requests = new Map<number, Request[]>();
  /** Requests between submit() and the scheduler (their grammar is being built). */
  private readonly admitting = new Map<number, { cancelled: boolean; settled: Promise<void> }>();

  private constructor(
    private readonly options: EngineOptions,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    /** Absent for an embedding model, which has no chat sequences. */
    private readonly context: LlamaContext | undefined,
    private readonly scheduler: Scheduler,
    private readonly rounds: number[],
    private readonly decodeCalls: Array<{ sequences: number; nativeCalls: number }>,
    private readonly template: string | undefined,
    private readonly facts: TemplateFacts | undefined,
    private readonly grammars: GrammarCache,
    private readonly thoughtClose: Token[],
    /** Only for models whose GGUF declares a pooling type. */
    private readonly embedder: Embedder | undefined,
    /** LoRA adapters; absent for an embedding model. */
    private readonly loras: LoraAdapters | undefined,
    readonly info: ModelInfo,
    private readonly log: EngineLog,
  ) {}

  /** `adapters`: LoRA adapter files to load before serving; one llama.cpp rejects fails the load. */
  static async load(options: EngineOptions, log: EngineLog, adapters: readonly string[] = []): Promise<Engine> {
    const started = performance.now();
    // Where a load's time goes (logged with "model loaded"; scripts/bench/cold-start.ts reads it).
    // performance.now() counts from this process's start: `started` is the worker's own start-up.
    const phasesMs: Record<string, number> = { workerStart: Math.round(started) };
    let mark = started;
    const phase = (name: string) => {
      const now = performance.now();
      phasesMs[name] = Math.round(now - mark);
      mark = now;
    };
    const { threads, warning: threadsWarning } = decodeThreads(options.model.threads, usableCores());
    if (threadsWarning) log("warn", threadsWarning);
    const backend = await loadLlamaBackend(options.model.kvPool, {
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text) log(level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? "error" : "debug", text);
      },
    });
    if (backend.notice) log("warn", backend.notice);
    const { llama } = backend;
    const unified = backend.unifiedKv;
    phase("backend");
    const header = await modelHeader(options.modelPath, options.estimateCacheDir);
    phase("header");
    const cache = options.estimateCacheDir ? { dir: options.estimateCacheDir, build: backend.build } : undefined;
    await checkMemoryBudget(llama, options.modelPath, options.model, unified, cache, header);
    phase("memoryCheck");
    // checkMemoryBudget checked the weights and the context against the budget: node-llama-cpp's
    // own check against free memory, and the weight-free simulated load it runs for it, are not
    // needed (the addon patch skips that simulation when the checks are off).
    const prepared = options.repackCacheDir === undefined ? undefined : prepareRepackCache(options.repackCacheDir, options.modelPath);
    if (prepared && "error" in prepared) log("warn", "the repacked-weights cache is off for this load", { reason: prepared.error });
    const repackDir = prepared && "dir" in prepared ? prepared.dir : undefined;
    useRepackCache(repackDir);
    const model = await llama.loadModel({ modelPath: options.modelPath, ignoreMemorySafetyChecks: true, _edgellmFileInfo: header });
    phase("model");
    // "miss": repacked now and written in the background, or nothing of this model is repacked on this CPU
    const repackCache = repackDir === undefined ? "off" : repackCacheMapped(repackDir) ? "hit" : "miss";
    // An embedding model serves /v1/embeddings only, as llama-server started with --embeddings
    // does: chat sequences would reserve KV memory for generations it was not trained to make.
    // Its one embedding context is created here, not on first use, so a context that does not
    // fit in memory stops start-up with one clear line instead of failing a request later.
    const pooling = declaredPooling(model.fileInfo.metadata);
    const embedder = pooling
      ? await Embedder.create(model, pooling, { contextSize: options.model.contextSize, batchSize: options.model.batchSize, threads, vocabularySize: vocabularySize(model) })
      : undefined;
    const { context, slots, kv, requestContext, poolCells } = embedder
      ? { context: undefined, slots: [], kv: new KvPagePool(options.model.kvPageTokens, 0, unified), requestContext: embedder.contextSize, poolCells: 0 }
      : await createSequences(model, options, unified, threads);
    phase("context");
    const loras = context ? new LoraAdapters(model, context, (msg, fields) => log("error", msg, fields)) : undefined;
    if (!loras && adapters.length > 0) throw new Error("LoRA adapters need a generative model; this one is an embedding model");
    for (const file of adapters) await loras!.load(file);
    const template = model.fileInfo.metadata.tokenizer?.chat_template as string | undefined;
    const facts = template ? templateFacts(template) : undefined;
    const info: ModelInfo = {
      id: options.modelId,
      path: options.modelPath,
      contextSize: requestContext,
      sequences: slots.length,
      kvPool: unified ? "unified" : "per-sequence",
      kvPoolTokens: poolCells,
      addonBuild: backend.build,
      trainContextSize: model.trainContextSize,
      chatTemplate: template !== undefined,
      supportsThinking: facts?.supportsThinking ?? false,
      pooling: pooling ?? null,
      sizeBytes: statSync(options.modelPath).size,
      loadMs: Math.round(performance.now() - started),
    };
    phase("rest");
    log("info", "model loaded", { threads, ...info, phasesMs, repackCache });
    const rounds: number[] = [];
    const decodeCalls: Array<{ sequences: number; nativeCalls: number }> = [];
    // Bounded like the rounds: a worker nobody scrapes must not grow without limit.
    if (context) RoundDecoder.of(context).observe(({ sequences, nativeCalls }) => decodeCalls.length < 100_000 && decodeCalls.push({ sequences, nativeCalls }));
    const scheduler = new Scheduler(slots, {
      kv,
      prefixReuse: options.model.prefixReuse,
      ...prefillPolicy(options.model),
      onRound: (plan) => {
        // Bounded: a worker nobody scrapes must not grow without limit.
        if (rounds.length < 100_000) rounds.push(plan.tokens);
      },
      onGroup: (key) => loras?.apply(key),
    });
    const thoughtClose = model.tokenize(THOUGHT_CLOSE, true);
    return new Engine(options, llama, model, context, scheduler, rounds, decodeCalls, template, facts, new GrammarCache(llama), thoughtClose, embedder, loras, info, log);
  }

  submit(id: number, request: GenerationRequest, emit: Emit): void {
    // Generation on an embedding model: refused, as llama-server refuses it with --embeddings.
    if (!this.context) {
      emit({ type: "failed", error: { kind: "model_not_generative", model: this.info.id } });
      return;
    }
    const admission = { cancelled: false, settled: Promise.resolve() };
    this.admitting.set(id, admission);
    const grammar = request.grammar ? this.grammars.get(request.grammar) : Promise.resolve(undefined);
    admission.settled = grammar
      .then((g) => {
        const { choices, info } = this.admit(id, request, g, emit);
        this.checkBackpressure(choices.length, info.promptTokens);
        this.loras!.acquire(request.adapters);
        for (const choice of choices) choice.cancelled = admission.cancelled;
        this.requests.set(id, choices);
        emit({ type: "started", info });
        for (const choice of choices) this.scheduler.submit(choice);
      })
      .catch((err: unknown) => {
        if (!(err instanceof EngineError)) this.log("error", "request failed before admission", { id, err: String(err) });
        emit({ type: "failed", error: toEngineErrorInfo(err) });
      })
      .finally(() => this.admitting.delete(id));
  }

  /**
   * A bounded wait queue: past it a request is refused at once (queue_full, a 429 with Retry-After) instead of
   * waiting without end (what llama-server and, until recently, vLLM do). A request's `n` choices
   * queue as `n` requests; an empty queue takes any one request.
   */
  private checkBackpressure(choices: number, promptTokens: number): void {
    const { maxQueuedRequests, maxQueuedTokens } = this.options.limits;
    const { queued, queuedTokens } = this.scheduler.snapshot();
    const overRequests = maxQueuedRequests > 0 && queued > 0 && queued + choices > maxQueuedRequests;
    const overTokens = maxQueuedTokens > 0 && queued > 0 && queuedTokens + choices * promptTokens > maxQueuedTokens;
    if (overRequests || overTokens) {
      throw new EngineError({ kind: "queue_full", queued, queuedTokens, retryAfterSeconds: 2 });
    }
  }

  /** `drainRounds` hands over (and forgets) the per-round token counts gathered since the last drain. */
  status(drainRounds = false): EngineStatus {
    const snapshot: EngineStatus = this.scheduler.snapshot();
    // Embedding requests take turns on the one embedding sequence: all of them are in progress.
    if (this.embedder) snapshot.running += this.embedder.pending;
    if (drainRounds) {
      snapshot.roundTokens = this.rounds.splice(0);
      snapshot.decodeCalls = this.decodeCalls.splice(0);
    }
    return snapshot;
  }

  cancel(id: number): void {
    const admission = this.admitting.get(id);
    if (admission) admission.cancelled = true;
    for (const choice of this.requests.get(id) ?? []) choice.cancelled = true;
    this.embedder?.cancel(id);
  }

  /**
   * Ends every request, waits for the round in flight, then frees the native objects: freeing the
   * context under a running decode left the worker hanging until the server's kill timer.
   */
  async dispose(): Promise<void> {
    for (const id of new Set([...this.admitting.keys(), ...this.requests.keys()])) this.cancel(id);
    await Promise.all([...this.admitting.values()].map((a) => a.settled));
    await this.scheduler.idle();
    await this.embedder?.dispose();
    await this.context?.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }

  /** Loads a LoRA adapter file (POST /v1/models/{id}/adapters); a 400 when llama.cpp rejects it. */
  async loadAdapter(file: string): Promise<{ result: null } | { error: EngineErrorInfo }> {
    try {
      if (!this.loras) {
        throw new EngineError({ kind: "adapter_invalid", param: "path", code: "invalid_adapter", reason: `${this.info.id} is an embedding model: LoRA adapters apply to generation only` });
      }
      await this.loras.load(file);
      return { result: null };
    } catch (err) {
      return { error: this.failure(err, "adapter load failed", { file }) };
    }
  }

  async unloadAdapter(file: string): Promise<void> {
    await this.loras?.unload(file);
  }

  /** Tokenizer and template work for /tokenize, /detokenize and /apply-template; no sequence needed. */
  textOp(op: TextOp): { result: TextOpResult } | { error: EngineErrorInfo } {
    try {
      return { result: this.runTextOp(op) };
    } catch (err) {
      return { error: this.failure(err, "text operation failed", { kind: op.kind }) };
    }
  }

  /** /v1/embeddings: refused for a model without pooling, else queued in the embedder. */
  async embed(id: number, request: EmbeddingRequest): Promise<{ result: EmbeddingResult } | { error: EngineErrorInfo }> {
    try {
      // A generative model's GGUF declares no pooling: llama.cpp would hand back one hidden state per
      // token, and any pooling picked here would give vectors the model was never trained to make.
      if (!this.embedder) {
        throw new EngineError({ kind: "model_not_embedding", model: this.info.id, architecture: this.model.fileInfo.metadata.general.architecture });
      }
      return { result: await this.embedder.embed(id, request) };
    } catch (err) {
      return { error: this.failure(err, "embedding failed", { id, requestId: request.requestId }) };
    }
  }

  /** Engine errors go back as they are; anything else is logged and answered as `internal`. */
  private failure(err: unknown, msg: string, fields: Record<string, unknown>): EngineErrorInfo {
    if (!(err instanceof EngineError)) this.log("error", msg, { ...fields, err: String(err) });
    return toEngineErrorInfo(err);
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
    if (bad !== -1) throw new EngineError({ kind: "invalid_token", param, at: `${param}[${bad}]`, vocabularySize: vocab });
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

  /**
   * The one place thinking is decided: the request's switch, else generation.enableThinking, when
   * the template has the switch. A template without it but whose generation prompt opens <think>
   * always thinks.
   */
  private thinkingFor(request: GenerationRequest): boolean {
    return this.facts?.supportsThinking
      ? (request.enableThinking ?? this.options.generation.enableThinking)
      : (this.facts?.generationOpensThink ?? false);
  }

  private renderPrompt(request: GenerationRequest, thinking: boolean): string {
    if (!this.template) throw new EngineError({ kind: "template_missing" });
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
      if (err instanceof ChatTemplateError && err.kind === "raised") throw new EngineError({ kind: "template_rejected", reason: err.message });
      throw err;
    }
  }

  /**
   * The scheduler's `Request`s for a wire request, one per choice, each with the `Generation`
   * making its events: the prompt rendered and tokenized once, the first choice the parent whose
   * KV cache the others fork.
   */
  private admit(id: number, request: GenerationRequest, grammar: AnswerGrammars | undefined, emit: Emit): { choices: Request[]; info: StartedInfo } {
    const raw = request.prompt !== undefined;
    const thinking = !raw && this.thinkingFor(request);
    // A grammar leaves the prompt as the template renders it: the model decides whether it thinks
    // first, and the grammar allows either (Generation.grammarState). Opening the thought in the
    // prompt instead would put a model that answers at once inside a thought the grammar never reaches.
    const startsInReasoning = thinking && (this.facts?.generationOpensThink ?? false);
    const promptText = raw ? undefined : this.renderPrompt(request, thinking);
    const prompt = promptText === undefined ? this.rawPromptTokens(request.prompt!) : this.model.tokenize(promptText, true);
    const param: PromptParam = raw ? "prompt" : "messages";
    if (prompt.length === 0) throw new EngineError({ kind: "empty_prompt", param });
    const contextSize = this.info.contextSize;
    const tooLong = (maxTokens: number) => new EngineError({ kind: "context_too_long", param, contextSize, promptTokens: prompt.length, maxTokens });
    if (request.maxTokens !== undefined && prompt.length + request.maxTokens > contextSize) throw tooLong(request.maxTokens);
    if (prompt.length >= contextSize) throw tooLong(1);
    const maxPrompt = this.options.limits.maxPromptTokens;
    if (maxPrompt > 0 && prompt.length > maxPrompt) {
      throw new EngineError({ kind: "prompt_too_long", param, promptTokens: prompt.length, limit: maxPrompt });
    }
    const maxTokens = request.maxTokens ?? Math.min(this.options.generation.defaultMaxTokens, contextSize - prompt.length);
    const defaults = thinking ? this.options.generation.samplingThinking : this.options.generation.samplingNonThinking;
    this.log("debug", "prompt rendered", { id, requestId: request.requestId, prompt: promptText ?? request.prompt });

    const n = Math.max(1, request.n ?? 1);
    const choices: Request[] = [];
    let running = n;
    const emitChoice = choiceEvents(emit, choices);
    for (let index = 0; index < n; index++) {
      // Each choice after the first gets its own seed, so the choices differ.
      const seed = request.sampling.seed === undefined ? undefined : request.sampling.seed + index;
      const sampling: Required<SamplingParams> = resolveSampling({ ...request.sampling, seed }, defaults);
      const spec = {
        maxTokens,
        stop: request.stop,
        thinking,
        startsInReasoning,
        thinkingBudget: request.thinkingBudget ?? this.options.generation.thinkingBudget,
        grammar,
        evaluateOptions: (recent: () => number[]) => buildEvaluateOptions(sampling, recent),
        thoughtClose: this.thoughtClose,
      };
      const hooks = {
        onAdmitted: (slotId: number, reused: number) => this.log("debug", "admitted", { id, index, slotId, promptTokens: prompt.length, reused }),
        onPreempted: () => this.log("debug", "preempted: the KV pool is full; the request resumes when pages free up", { id, index }),
        onError: (err: unknown) => this.log("error", "generation failed", { id, index, err: String(err) }),
        onReleased: () => {
          if (--running > 0) return;
          this.requests.delete(id);
          this.loras!.release(request.adapters);
        },
      };
      choices.push(
        new Request(
          { id, index, parent: choices[0], prompt, adapterKey: adapterKey(request.adapters), logprobs: request.logprobs },
          (r) => new Generation(r, spec, this.model, emitChoice, hooks),
        ),
      );
    }
    const info: StartedInfo = {
      promptTokens: prompt.length,
      thinking,
      startsInReasoning,
    };
    return { choices, info };
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
async function createSequences(model: LlamaModel, options: EngineOptions, unified: boolean, threads: number) {
  const { sequences, contextSize, kvPageTokens } = options.model;
  const context = await model.createContext({
    sequences,
    contextSize: kvLayout(options.model, unified).contextPerSequence,
    batchSize: options.model.batchSize,
    threads,
    experimentalKvCacheKeyType: KV_TYPES[options.model.kvCacheType],
    experimentalKvCacheValueType: KV_TYPES[options.model.kvCacheType],
    ...(unified && { kvUnified: true }),
    // checkMemoryBudget checked this very context against the budget before the model loaded;
    // node-llama-cpp's own check against free memory (and its simulated context) is not ours to apply.
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
  const slots = Array.from({ length: sequences }, (_, i) => new LlamaSlot(i, context.getSequence({ contextShift: { size: 0 } }), model));
  return { context, slots, kv, requestContext, poolCells };
}

/** llama-server's default -b: the most prompt tokens one of its rounds takes. */
const LLAMA_SERVER_ROUND_TOKENS = 2048;

/**
 * "first-come": prefillChunk tokens a round while streams decode (batchSize while none does), one
 * prompt finished per round. "together": llama-server's scheduling, every waiting prompt in the
 * next round up to its 2,048 tokens (the round is decoded in batchSize batches), all finishing in it.
 */
function prefillPolicy(model: EngineOptions["model"]): Pick<SchedulerOptions, "prefillBudget" | "finishTogether"> {
  if (model.prefillScheduling === "together") {
    const tokens = Math.max(LLAMA_SERVER_ROUND_TOKENS, model.batchSize);
    return { prefillBudget: { decoding: tokens, idle: tokens }, finishTogether: true };
  }
  return { prefillBudget: { decoding: Math.min(model.prefillChunk, model.batchSize), idle: model.batchSize } };
}
