/**
 * Owns one worker process serving one model: starts it, routes requests to it, and restarts
 * it with backoff when it dies. Requests in flight on a dead worker fail cleanly (worker_unavailable), and
 * every request has a deadline so none can hang.
 */
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { stat } from "node:fs/promises";
import type { Logger } from "pino";
import type { EmbeddingRequest, EmbeddingResult, EngineOptions, EngineStatus, GenerationRequest, ModelInfo, TextOp, TextOpResult } from "../engine/types.js";
import type { MainToWorker, WorkerToMain } from "../worker/protocol.js";
import { EngineError, type EngineErrorInfo } from "../engine/errors.js";
import { RequestHandle } from "./request-handle.js";
import { AdapterSet, toAdapter, type Adapter, type AdapterSpec } from "./adapters.js";
import { startWorker, workerLaunch } from "./worker-process.js";

/** "restarting": the worker died after it had served, and a replacement is on its way. */
export type WorkerState = "loading" | "ready" | "restarting" | "failed" | "stopped";

export interface WorkerOptions {
  /** First restart delay and its cap; the delay doubles with each consecutive failure. */
  backoffMs?: { initial: number; max: number };
  /** A worker that served this long before dying restarts without the backoff it had built up. */
  stableAfterMs?: number;
  /** Deadline of one generation request, queueing included; 0 = none. */
  requestTimeoutMs?: number;
  /** The model's adapters when they outlive this worker (a ServedModel's, kept across reloads); default: `model.lora`. */
  adapters?: AdapterSet;
}

const workerUnavailable: EngineErrorInfo = { kind: "worker_unavailable", retryAfterSeconds: 1 };
const shuttingDown: EngineErrorInfo = { kind: "shutting_down", retryAfterSeconds: 5 };
const requestTimeout = (timeoutMs: number): EngineErrorInfo => ({ kind: "request_timeout", timeoutMs });

export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

export class ModelWorker extends EventEmitter {
  state: WorkerState = "loading";
  info: ModelInfo | undefined;
  restarts = 0;
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly inflight = new Map<number, RequestHandle>();
  private readonly deadlines = new Map<number, NodeJS.Timeout>();
  /** Failures since the worker last ran stably: the exponent of the restart delay. */
  private consecutiveFailures = 0;
  private readyAt = 0;
  private readonly statusWaiters = new Map<number, (status: EngineStatus | undefined) => void>();
  /** Requests answered by one message: text operations and embeddings. */
  private readonly replyWaiters = new Map<number, (answer: { result: unknown } | { error: EngineErrorInfo }) => void>();
  private stopping = false;
  /** The model's LoRA adapters: `model.lora`, then those added at run time. */
  readonly adapters: AdapterSet;

  constructor(
    readonly id: string,
    private readonly engine: EngineOptions,
    private readonly log: Logger,
    private readonly options: WorkerOptions = {},
  ) {
    super();
    this.adapters = options.adapters ?? new AdapterSet(engine.model.lora);
  }

  /** Starts the worker and resolves once the model is loaded (rejects with the worker's reason). */
  start(): Promise<ModelInfo> {
    if (this.state !== "restarting") this.state = "loading";
    const { child, preforked } = startWorker(workerLaunch(this.engine.model.workerHeapMB, this.engine.model.hugePages));
    this.child = child;
    this.log.debug({ model: this.id, pid: child.pid, preforked }, "worker process started");
    // IPC to a child that just died fails asynchronously; without a listener that would crash the server.
    child.on("error", (err) => this.log.warn({ model: this.id, err: err.message }, "worker channel error"));
    // A restarted worker loads the adapters added at run time too.
    this.send({ type: "init", engine: this.engine, adapters: this.adapters.paths() });
    return new Promise<ModelInfo>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.state = "failed";
        child.kill("SIGKILL");
        reject(new ModelLoadError(`model load timed out after ${this.engine.model.loadTimeoutMs} ms`));
      }, this.engine.model.loadTimeoutMs);
      child.on("message", (msg: WorkerToMain) => {
        switch (msg.type) {
          case "ready":
            this.info = msg.info;
            this.state = "ready";
            this.readyAt = Date.now();
            settled = true;
            clearTimeout(timer);
            this.emit("ready", msg.info);
            resolve(msg.info);
            return;
          case "load_failed":
            settled = true;
            clearTimeout(timer);
            this.state = "failed";
            reject(new ModelLoadError(msg.message));
            return;
          case "event": {
            const handle = this.inflight.get(msg.id);
            handle?.push(msg.event);
            if (handle?.finished) this.settle(msg.id);
            return;
          }
          case "status":
            this.statusWaiters.get(msg.id)?.(msg.status);
            this.statusWaiters.delete(msg.id);
            return;
          case "text_op":
          case "embeddings":
          case "adapter_load":
            this.replyWaiters.get(msg.id)?.(msg);
            this.replyWaiters.delete(msg.id);
            return;
          case "log":
            this.log[msg.level]({ model: this.id, ...msg.fields }, msg.msg);
            return;
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        this.child = null;
        this.failInflight(workerUnavailable);
        for (const answer of this.statusWaiters.values()) answer(undefined);
        this.statusWaiters.clear();
        for (const answer of this.replyWaiters.values()) answer({ error: workerUnavailable });
        this.replyWaiters.clear();
        if (!settled) {
          settled = true;
          this.state = this.stopping ? "stopped" : "failed";
          reject(new ModelLoadError(`the worker exited while loading (code ${code}, signal ${signal}): the file may be corrupt, or memory ran out`));
          return;
        }
        // Only a worker that was serving restarts from here; a failed load restarts (or not) through start()'s caller.
        if (this.stopping || this.state !== "ready") return;
        if (Date.now() - this.readyAt >= (this.options.stableAfterMs ?? 60_000)) this.consecutiveFailures = 0;
        this.log.error({ model: this.id, code, signal }, "worker died; restarting");
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    if (this.stopping) return;
    this.state = "restarting";
    this.emit("restart");
    const backoff = this.options.backoffMs ?? { initial: 500, max: 30_000 };
    const delay = Math.min(backoff.initial * 2 ** this.consecutiveFailures, backoff.max);
    this.consecutiveFailures++;
    this.restarts++;
    this.log.info({ model: this.id, delayMs: delay }, "restarting worker");
    setTimeout(() => {
      if (this.stopping) return;
      this.start().then(
        () => this.log.info({ model: this.id, restarts: this.restarts }, "worker restarted"),
        (err) => {
          if (this.stopping) return;
          this.log.error({ model: this.id, err: String(err) }, "worker restart failed");
          this.scheduleRestart();
        },
      );
    }, delay).unref();
  }

  private failInflight(error: EngineErrorInfo): void {
    const streams = [...this.inflight.keys()].map((id) => [id, this.inflight.get(id)!] as const);
    for (const [id, stream] of streams) {
      this.settle(id);
      stream.push({ type: "failed", error });
    }
  }

  /** Forgets a request that ended, one way or another. */
  private settle(id: number): void {
    this.inflight.delete(id);
    clearTimeout(this.deadlines.get(id));
    this.deadlines.delete(id);
  }

  generate(request: GenerationRequest): RequestHandle {
    const id = this.nextId++;
    const stream = new RequestHandle(() => {
      this.settle(id);
      this.send({ type: "cancel", id });
    }, request.n);
    if (this.state !== "ready" || !this.child) {
      const phase = this.state === "restarting" ? "restarting" : "loading";
      stream.push({ type: "failed", error: { kind: "worker_not_ready", phase, retryAfterSeconds: 2 } });
      return stream;
    }
    this.inflight.set(id, stream);
    const timeoutMs = this.options.requestTimeoutMs ?? 0;
    if (timeoutMs > 0) {
      const timer = setTimeout(() => {
        this.settle(id);
        this.send({ type: "cancel", id });
        stream.push({ type: "failed", error: requestTimeout(timeoutMs) });
      }, timeoutMs);
      this.deadlines.set(id, timer.unref());
    }
    this.send({ type: "generate", id, request });
    return stream;
  }

  /**
   * The engine's slots and queue; undefined when the worker is not running. Only the metrics
   * scrape drains the per-round counts.
   */
  status(drainRounds = false, timeoutMs = 2000): Promise<EngineStatus | undefined> {
    if (this.state !== "ready" || !this.child) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.statusWaiters.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.statusWaiters.set(id, (status) => {
        clearTimeout(timer);
        resolve(status);
      });
      this.send({ type: "status", id, drainRounds });
    });
  }

  /** Tokenizes, detokenizes or renders the chat template in the worker; rejects with an EngineError. */
  textOp<K extends TextOp["kind"]>(op: Extract<TextOp, { kind: K }>): Promise<Extract<TextOpResult, { kind: K }>> {
    return this.ask<Extract<TextOpResult, { kind: K }>>((id) => ({ type: "text_op", id, op })).answer;
  }

  /**
   * Embeds the request's inputs in the worker; rejects with an EngineError. `cancel` (the client
   * hung up) drops the inputs not evaluated yet; the request deadline applies as to a generation.
   */
  embed(request: EmbeddingRequest): { result: Promise<EmbeddingResult>; cancel(): void } {
    const { id, answer } = this.ask<EmbeddingResult>((id) => ({ type: "embed", id, request }));
    const end = (error: EngineErrorInfo) => {
      this.replyWaiters.get(id)?.({ error });
      this.replyWaiters.delete(id);
      this.send({ type: "cancel", id });
    };
    const timeoutMs = this.options.requestTimeoutMs ?? 0;
    const timer = timeoutMs > 0 ? setTimeout(() => end(requestTimeout(timeoutMs)), timeoutMs).unref() : undefined;
    const result = answer.finally(() => clearTimeout(timer));
    const cancel = () => end({ kind: "client_closed" });
    return { result, cancel };
  }

  /** Sends one request message and waits for its one answer (or the worker's death). */
  private ask<T>(message: (id: number) => MainToWorker): { id: number; answer: Promise<T> } {
    const id = this.nextId++;
    if (this.state !== "ready" || !this.child) {
      const error = new EngineError({ kind: "worker_not_ready", phase: "not_ready", retryAfterSeconds: 2 });
      return { id, answer: Promise.reject(error) };
    }
    const answer = new Promise<T>((resolve, reject) => {
      this.replyWaiters.set(id, (reply) => ("result" in reply ? resolve(reply.result as T) : reject(new EngineError(reply.error))));
    });
    this.send(message(id));
    return { id, answer };
  }

  /** Loads the adapter in the worker, then lets requests select it; rejects with an EngineError (adapter_invalid when llama.cpp refuses the file). */
  async addAdapter(spec: AdapterSpec): Promise<Adapter> {
    const adapter = toAdapter(spec);
    this.adapters.ensureFree(adapter.id);
    const file = await stat(adapter.path).catch(() => undefined);
    if (!file?.isFile()) throw new EngineError({ kind: "adapter_invalid", param: "path", code: "adapter_file_not_found", reason: `No adapter file at ${adapter.path}` });
    await this.ask<null>((id) => ({ type: "adapter_load", id, path: adapter.path })).answer;
    try {
      this.adapters.add(adapter);
    } catch (err) {
      // Another request took the id while the file loaded.
      if (!this.adapters.paths().includes(adapter.path)) this.send({ type: "adapter_unload", path: adapter.path });
      throw err;
    }
    this.log.info({ model: this.id, adapter: adapter.id, path: adapter.path, scale: adapter.scale }, "LoRA adapter added");
    return adapter;
  }

  /** Requests can no longer select the adapter; the worker frees it when those running with it end. */
  removeAdapter(id: string): Adapter | undefined {
    const adapter = this.adapters.remove(id);
    if (!adapter) return undefined;
    if (!this.adapters.paths().includes(adapter.path)) this.send({ type: "adapter_unload", path: adapter.path });
    this.log.info({ model: this.id, adapter: adapter.id }, "LoRA adapter removed");
    return adapter;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  private send(msg: MainToWorker): void {
    // The callback takes delivery errors (a worker that just died): its exit handler does the cleanup.
    if (this.child?.connected) this.child.send(msg, (err) => err && this.log.debug({ model: this.id, type: msg.type, err: err.message }, "worker message not delivered"));
  }

  /** Ends whatever is still in flight with a `shutting_down` error, then stops the worker. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.state = "stopped";
    this.failInflight(shuttingDown);
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.send({ type: "shutdown" });
    const killTimer = setTimeout(() => {
      this.log.error({ model: this.id, pid: child.pid }, "the worker did not exit within 10 s of shutdown; killing it");
      child.kill("SIGKILL");
    }, 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
