/**
 * The inference engine inside a worker process: loads the model, renders prompts with the
 * GGUF's own chat template, admits requests and runs them through the scheduler.
 */
import os from "node:os";
import { statSync } from "node:fs";
import { getLlama, type Llama, type LlamaContext, type LlamaModel, type Token, LlamaLogLevel } from "node-llama-cpp";
import type { WorkerInit } from "../worker/protocol.js";
import type { EngineStatus, GenerationEvent, GenerationRequest, ModelInfo, SamplingParams, StartedInfo } from "./types.js";
import { ApiError, contextLengthExceeded, invalidRequest, toApiError } from "../openai/errors.js";
import { ChatTemplateError, renderChatTemplate, templateFacts, type TemplateFacts } from "../chat/template.js";
import { IncrementalDetokenizer } from "../chat/incremental-detokenizer.js";
import { StopMatcher } from "../chat/stop-matcher.js";
import { Scheduler } from "./scheduler.js";
import { LlamaSlot, type SlotTask } from "./llama-slot.js";
import { buildEvaluateOptions, resolveSampling } from "./sampling.js";

const KV_TYPES = { f16: "F16", q8_0: "Q8_0" } as const;

export type Emit = (event: GenerationEvent) => void;
export type EngineLog = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export class Engine {
  private readonly tasks = new Map<number, SlotTask>();

  private constructor(
    private readonly init: WorkerInit,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly scheduler: Scheduler,
    private readonly rounds: number[],
    private readonly template: string | undefined,
    private readonly facts: TemplateFacts | undefined,
    readonly info: ModelInfo,
    private readonly log: EngineLog,
  ) {}

  static async load(init: WorkerInit, log: EngineLog): Promise<Engine> {
    const started = performance.now();
    const threads = init.model.threads > 0 ? init.model.threads : os.availableParallelism();
    const llama = await getLlama({
      gpu: false,
      build: "never",
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text) log(level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? "error" : "debug", text);
      },
    });
    const model = await llama.loadModel({ modelPath: init.modelPath });
    const context = await model.createContext({
      sequences: init.model.sequences,
      contextSize: init.model.contextSize,
      batchSize: init.model.batchSize,
      threads,
      experimentalKvCacheKeyType: KV_TYPES[init.model.kvCacheType],
      experimentalKvCacheValueType: KV_TYPES[init.model.kvCacheType],
    });
    const slots = Array.from(
      { length: init.model.sequences },
      (_, i) => new LlamaSlot(i, context.getSequence({ contextShift: { size: 0 } }), (t) => model.isEogToken(t)),
    );
    const template = model.fileInfo.metadata.tokenizer?.chat_template as string | undefined;
    const facts = template ? templateFacts(template) : undefined;
    const info: ModelInfo = {
      id: init.modelId,
      path: init.modelPath,
      contextSize: context.contextSize,
      sequences: init.model.sequences,
      trainContextSize: model.trainContextSize,
      chatTemplate: template !== undefined,
      supportsThinking: facts?.supportsThinking ?? false,
      sizeBytes: statSync(init.modelPath).size,
      loadMs: Math.round(performance.now() - started),
    };
    log("info", "model loaded", { threads, ...info });
    const rounds: number[] = [];
    const scheduler = new Scheduler(slots, (tokens) => {
      // Bounded: a worker nobody scrapes must not grow without limit.
      if (rounds.length < 100_000) rounds.push(tokens);
    });
    return new Engine(init, llama, model, context, scheduler, rounds, template, facts, info, log);
  }

  submit(id: number, request: GenerationRequest, emit: Emit): void {
    try {
      const { task, info } = this.admit(id, request, emit);
      this.tasks.set(id, task);
      emit({ type: "started", info });
      this.scheduler.submit(task);
    } catch (err) {
      const apiErr = toApiError(err);
      if (!(err instanceof ApiError)) this.log("error", "request failed before admission", { id, err: String(err) });
      emit({ type: "failed", error: apiErr.toJSON() });
    }
  }

  /** `drainRounds` hands over (and forgets) the per-round token counts gathered since the last drain. */
  status(drainRounds = false): EngineStatus {
    const snapshot: EngineStatus = this.scheduler.snapshot();
    if (drainRounds) snapshot.roundTokens = this.rounds.splice(0);
    return snapshot;
  }

  cancel(id: number): void {
    const task = this.tasks.get(id);
    if (task) task.cancelled = true;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }

  private renderPrompt(request: GenerationRequest, thinking: boolean): string {
    if (!this.template) {
      throw invalidRequest("This model has no chat template; use /v1/completions", "messages", "chat_template_missing");
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

  private admit(id: number, request: GenerationRequest, emit: Emit): { task: SlotTask; info: StartedInfo } {
    // A template without the switch but whose generation prompt opens <think> always thinks.
    const thinking = this.facts?.supportsThinking
      ? (request.enableThinking ?? this.init.generation.enableThinking)
      : (this.facts?.generationOpensThink ?? false);
    const promptText = this.renderPrompt(request, thinking);
    const prompt = this.model.tokenize(promptText, true);
    const contextSize = this.context.contextSize;
    if (request.maxTokens !== undefined && prompt.length + request.maxTokens > contextSize) {
      throw contextLengthExceeded(contextSize, prompt.length, request.maxTokens);
    }
    if (prompt.length >= contextSize) throw contextLengthExceeded(contextSize, prompt.length, 1);
    const maxTokens = request.maxTokens ?? Math.min(this.init.generation.defaultMaxTokens, contextSize - prompt.length);
    const sampling: Required<SamplingParams> = resolveSampling(request.sampling, thinking ? this.init.generation.samplingThinking : this.init.generation.samplingNonThinking);
    this.log("debug", "prompt rendered", { id, requestId: request.requestId, prompt: promptText });

    const detok = new IncrementalDetokenizer((tokens) => this.model.detokenize(tokens as Token[], true));
    const stops = new StopMatcher(request.stop);
    const timings = { enqueued: performance.now(), admitted: 0, firstToken: 0 };
    let completionTokens = 0;
    const generated: number[] = [];
    let cachedTokens = 0;
    // Tokens generated since the last text event (a token can yield no text until its UTF-8 completes).
    let unreportedTokens = 0;
    let done = false;
    const finish = (finishReason: "stop" | "length") => {
      if (done) return;
      done = true;
      const tail = stops.flush();
      if (tail || unreportedTokens) emit({ type: "text", text: tail, tokens: unreportedTokens });
      unreportedTokens = 0;
      const now = performance.now();
      emit({
        type: "done",
        finishReason,
        completionTokens,
        cachedTokens,
        timings: {
          queueMs: timings.admitted - timings.enqueued,
          prefillMs: (timings.firstToken || now) - timings.admitted,
          decodeMs: timings.firstToken ? now - timings.firstToken : 0,
        },
      });
    };
    const pushText = (text: string): boolean => {
      if (!text) return false;
      const out = stops.push(text);
      if (out.text) {
        emit({ type: "text", text: out.text, tokens: unreportedTokens });
        unreportedTokens = 0;
      }
      return out.stopped;
    };

    const task: SlotTask = {
      prompt,
      cancelled: false,
      evaluateOptions: buildEvaluateOptions(sampling, () => generated),
      onAdmitted: (slotId, reused) => {
        timings.admitted = performance.now();
        cachedTokens = reused;
        this.log("debug", "admitted", { id, slotId, promptTokens: prompt.length, reused });
      },
      onToken: ({ token, eog }) => {
        if (!timings.firstToken) timings.firstToken = performance.now();
        if (eog) {
          pushText(detok.flush());
          finish("stop");
          return true;
        }
        completionTokens++;
        unreportedTokens++;
        generated.push(token);
        if (pushText(detok.push([token]))) {
          finish("stop");
          return true;
        }
        if (completionTokens >= maxTokens) {
          pushText(detok.flush());
          finish("length");
          return true;
        }
        return false;
      },
      onError: (err) => {
        this.log("error", "generation failed", { id, err: String(err) });
        if (!done) {
          done = true;
          emit({ type: "failed", error: toApiError(err).toJSON() });
        }
      },
      onReleased: () => {
        this.tasks.delete(id);
      },
    };
    const info: StartedInfo = {
      promptTokens: prompt.length,
      thinking,
      startsInReasoning: thinking && (this.facts?.generationOpensThink ?? false),
      maxTokens,
    };
    return { task, info };
  }
}
