/**
 * Owns one worker process serving one model: starts it, routes requests to it, and restarts
 * it with backoff when it dies. Requests in flight on a dead worker fail cleanly (503).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { EngineStatus, GenerationRequest, ModelInfo } from "../engine/types.js";
import type { MainToWorker, WorkerInit, WorkerToMain } from "../worker/protocol.js";
import { ApiError } from "../openai/errors.js";
import { GenerationStream } from "./generation-stream.js";

const WORKER_ENTRY = new URL("../worker/main" + (import.meta.url.endsWith(".ts") ? ".ts" : ".js"), import.meta.url);

export type WorkerState = "loading" | "ready" | "failed" | "stopped";

export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

export class ModelWorker extends EventEmitter {
  state: WorkerState = "loading";
  info: ModelInfo | undefined;
  restarts = 0;
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly inflight = new Map<number, GenerationStream>();
  private readonly statusWaiters = new Map<number, (status: EngineStatus | undefined) => void>();
  private stopping = false;

  constructor(
    readonly id: string,
    private readonly init: WorkerInit,
    private readonly log: Logger,
    private readonly backoffMs = { initial: 500, max: 30_000 },
  ) {
    super();
  }

  /** Starts the worker and resolves once the model is loaded (rejects with the worker's reason). */
  start(): Promise<ModelInfo> {
    this.state = "loading";
    const execArgv = WORKER_ENTRY.pathname.endsWith(".ts") ? ["--import", "tsx"] : [];
    const child = fork(fileURLToPath(WORKER_ENTRY), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    this.send({ type: "init", init: this.init });
    return new Promise<ModelInfo>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        child.kill("SIGKILL");
        reject(new ModelLoadError(`model load timed out after ${this.init.model.loadTimeoutMs} ms`));
      }, this.init.model.loadTimeoutMs);
      child.on("message", (msg: WorkerToMain) => {
        switch (msg.type) {
          case "ready":
            this.info = msg.info;
            this.state = "ready";
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
          case "event":
            this.inflight.get(msg.id)?.push(msg.event);
            if (msg.event.type === "done" || msg.event.type === "failed") this.inflight.delete(msg.id);
            return;
          case "status":
            this.statusWaiters.get(msg.id)?.(msg.status);
            this.statusWaiters.delete(msg.id);
            return;
          case "log":
            this.log[msg.level]({ model: this.id, ...msg.fields }, msg.msg);
            return;
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        this.child = null;
        this.failInflight();
        if (!settled) {
          settled = true;
          this.state = "failed";
          reject(new ModelLoadError(`worker exited during load (code ${code}, signal ${signal})`));
          return;
        }
        if (this.stopping || this.state === "failed") return;
        this.log.error({ model: this.id, code, signal }, "worker died; restarting");
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    this.state = "loading";
    this.emit("restart");
    const delay = Math.min(this.backoffMs.initial * 2 ** this.restarts, this.backoffMs.max);
    this.restarts++;
    setTimeout(() => {
      if (this.stopping) return;
      this.start().then(
        () => this.log.info({ model: this.id, restarts: this.restarts }, "worker restarted"),
        (err) => {
          this.log.error({ model: this.id, err: String(err) }, "worker restart failed");
          this.scheduleRestart();
        },
      );
    }, delay).unref();
  }

  private failInflight(): void {
    const error = new ApiError(503, "service_unavailable_error", "The model worker stopped unexpectedly; retry the request", {
      code: "worker_unavailable",
      headers: { "retry-after": "1" },
    }).toJSON();
    for (const stream of this.inflight.values()) stream.push({ type: "failed", error });
    this.inflight.clear();
  }

  generate(request: GenerationRequest): GenerationStream {
    const id = this.nextId++;
    const stream = new GenerationStream(() => {
      this.inflight.delete(id);
      this.send({ type: "cancel", id });
    });
    if (this.state !== "ready" || !this.child) {
      stream.push({
        type: "failed",
        error: new ApiError(503, "service_unavailable_error", "The model is loading; retry shortly", {
          code: "model_loading",
          headers: { "retry-after": "2" },
        }).toJSON(),
      });
      return stream;
    }
    this.inflight.set(id, stream);
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

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  private send(msg: MainToWorker): void {
    if (this.child?.connected) this.child.send(msg);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.state = "stopped";
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.send({ type: "shutdown" });
    const killTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(killTimer);
  }
}
