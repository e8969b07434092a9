/**
 * One model the server serves, loaded or not. It owns the model's worker processes: loads one
 * on demand, counts the requests using it, unloads it when its keep-alive runs out, and replaces
 * it blue-green (the new worker starts and takes new requests; the old one finishes its own,
 * then stops). Routes see the same generate / embed / textOp / status surface as a ModelWorker.
 */
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { EmbeddingRequest, EmbeddingResult, EngineStatus, GenerationRequest, ModelInfo, TextOp, TextOpResult } from "../engine/types.js";
import { EngineError, toEngineErrorInfo } from "../engine/errors.js";
import { RequestHandle } from "./request-handle.js";
import type { ModelWorker, WorkerState } from "./model-worker.js";
import { AdapterSet, type Adapter, type AdapterSpec } from "./adapters.js";

/** How long a model stays loaded after its last request, in ms; Infinity = until evicted. */
export type KeepAliveMs = number;

/** As llama-server's router reports a model. */
export type ModelStatus = "unloaded" | "loading" | "loaded";

export interface ModelSpec {
  id: string;
  /** The model's source and its smaller fallback variants, best first. */
  sources: string[];
  /** The `model.*` settings this model runs with. */
  model: Config["model"];
}

/** What the registry lends each model. */
export interface ModelHost {
  logger: Logger;
  /** Keep-alive of a model whose requests gave none. */
  defaultKeepAliveMs: KeepAliveMs;
  /** A source as a local GGUF file (pulling or synthesizing it if need be). */
  resolveSource(source: string): Promise<string>;
  createWorker(id: string, path: string, model: Config["model"], adapters: AdapterSet): ModelWorker;
  /**
   * Unloads idle models until `incoming` fits (model.maxLoaded, memory budget) and marks it
   * resident; throws an EngineError when it cannot.
   */
  makeRoom(incoming: ServedModel, path: string): Promise<void>;
}

interface Lease {
  worker: ModelWorker;
  release(): void;
}

const RETIRE_POLL_MS = 50;

export class ServedModel {
  /** The worker new requests go to; null while unloaded or loading. */
  worker: ModelWorker | null = null;
  /** Which of `spec.sources` runs (0 = the model itself, above = a fallback). */
  variant = 0;
  /** Set between admission and unload: counts against model.maxLoaded and the memory budget. */
  resident = false;
  /** Estimated bytes of the resident variant (memory admission). */
  estimateBytes = 0;
  lastUsed = 0;
  /** When an idle model unloads (ms since epoch); null = not scheduled. */
  expiresAt: number | null = null;
  /** Set while a fallback variant serves because of memory pressure: why, since when, the numbers. */
  fallback: ({ reason: string; since: string } & Record<string, unknown>) | null = null;
  /** Why the last load failed; cleared by a successful one. */
  lastError: string | null = null;
  private loading: Promise<ModelWorker> | null = null;
  /** Requests holding each worker: a worker being replaced stops once its count reaches 0. */
  private readonly leases = new Map<ModelWorker, number>();
  /** Requests waiting for the model to load. */
  private waiting = 0;
  private keepAliveMs: KeepAliveMs;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Reloads and swaps run one at a time. */
  private swaps: Promise<unknown> = Promise.resolve();
  /** Every worker this model has running (loading, serving or finishing), for shutdown. */
  private readonly live = new Set<ModelWorker>();
  private stopped = false;

  /** The model's LoRA adapters (`model.lora` and those added at run time): every worker it starts loads them. */
  readonly adapters: AdapterSet;

  constructor(
    public spec: ModelSpec,
    private readonly host: ModelHost,
  ) {
    this.keepAliveMs = host.defaultKeepAliveMs;
    this.adapters = new AdapterSet(spec.model.lora);
  }

  get id(): string {
    return this.spec.id;
  }

  get source(): string {
    return this.spec.sources[this.variant]!;
  }

  get loadStatus(): ModelStatus {
    if (this.worker) return "loaded";
    return this.loading ? "loading" : "unloaded";
  }

  /** The serving worker's state; "unloaded" (or "failed" after a failed load) without one. */
  get state(): WorkerState | "unloaded" {
    if (this.worker) return this.worker.state;
    if (this.loading) return "loading";
    return this.lastError ? "failed" : "unloaded";
  }

  get info(): ModelInfo | undefined {
    return this.worker?.info;
  }

  get restarts(): number {
    return this.worker?.restarts ?? 0;
  }

  get pid(): number | undefined {
    return this.worker?.pid;
  }

  /** Requests using the model or waiting for it to load. */
  get inflightCount(): number {
    let n = this.waiting;
    for (const count of this.leases.values()) n += count;
    return n;
  }

  get idle(): boolean {
    return this.inflightCount === 0;
  }

  /**
   * Loads the model unless it is loaded; resolves with the serving worker, rejects with an
   * EngineError (model_load_failed, model_capacity, insufficient_memory, shutting_down).
   * `keepAlive` replaces the model's keep-alive (POST /v1/models/load's keep_alive).
   */
  load(keepAlive?: KeepAliveMs): Promise<ModelWorker> {
    if (keepAlive !== undefined) {
      this.keepAliveMs = keepAlive;
      this.scheduleIdleUnload();
    }
    if (this.worker) return Promise.resolve(this.worker);
    if (this.stopped) return Promise.reject(shuttingDown());
    this.loading ??= this.startWorker(this.source, true).then(
      (worker) => {
        this.loading = null;
        this.worker = worker;
        this.lastUsed = Date.now();
        this.host.logger.info({ model: this.id, source: this.source, loadMs: worker.info?.loadMs }, "model loaded");
        this.scheduleIdleUnload();
        return worker;
      },
      (err: unknown) => {
        this.loading = null;
        throw err;
      },
    );
    return this.loading;
  }

  /**
   * Unloads the model: new requests load it again, requests in flight finish on the old worker,
   * which then stops. Resolves once it has stopped.
   */
  async unload(reason: string): Promise<void> {
    await this.loading?.catch(() => undefined);
    const worker = this.worker;
    if (!worker) return;
    this.worker = null;
    this.resident = false;
    this.estimateBytes = 0;
    this.expiresAt = null;
    clearTimeout(this.idleTimer);
    this.host.logger.info({ model: this.id, reason, inflight: this.leases.get(worker) ?? 0 }, "unloading model");
    await this.retire(worker);
  }

  /**
   * Blue-green replacement: starts a worker on `variant` of `spec` (default: the current ones),
   * waits until it is ready and sends new requests to it; the old worker finishes its requests
   * and then stops, after this resolves. A model that is not loaded only takes the new settings
   * for its next load. If the new worker cannot start, the old one keeps serving and the error
   * is thrown.
   */
  reload(reason: string, spec: ModelSpec = this.spec, variant = Math.min(this.variant, spec.sources.length - 1)): Promise<void> {
    const run = async () => {
      await this.loading?.catch(() => undefined);
      const old = this.worker;
      if (!old) {
        this.spec = spec;
        this.variant = variant;
        return;
      }
      const source = spec.sources[variant]!;
      this.host.logger.info({ model: this.id, from: this.source, to: source, reason }, "reload: starting the new worker");
      const fresh = await this.startWorker(source, false, spec.model);
      if (this.stopped) {
        await fresh.stop();
        return;
      }
      this.spec = spec;
      this.variant = variant;
      this.worker = fresh;
      this.host.logger.info({ model: this.id, source, reason, finishing: this.leases.get(old) ?? 0 }, "reload: new worker serving; the old one finishes its requests");
      this.scheduleIdleUnload();
      this.retire(old).catch((err: Error) => this.host.logger.error({ model: this.id, err: err.message }, "reload: stopping the old worker failed"));
    };
    const done = this.swaps.then(run);
    this.swaps = done.catch(() => undefined);
    return done;
  }

  /** One generation; waits for the model to load first. `keepAlive` is the request's keep_alive. */
  generate(request: GenerationRequest, keepAlive?: KeepAliveMs): RequestHandle {
    let inner: RequestHandle | null = null;
    let cancelled = false;
    const outer = new RequestHandle(() => {
      cancelled = true;
      inner?.cancel();
    }, request.n);
    void this.lease(keepAlive).then(
      async (lease) => {
        try {
          if (cancelled) return;
          inner = lease.worker.generate(request);
          for await (const event of inner) outer.push(event);
        } finally {
          lease.release();
        }
      },
      (err: unknown) => outer.push({ type: "failed", error: toEngineErrorInfo(err) }),
    );
    return outer;
  }

  embed(request: EmbeddingRequest, keepAlive?: KeepAliveMs): { result: Promise<EmbeddingResult>; cancel(): void } {
    let inner: { cancel(): void } | null = null;
    let cancelled = false;
    const result = this.lease(keepAlive).then(async (lease) => {
      try {
        if (cancelled) throw new EngineError({ kind: "client_closed" });
        const running = lease.worker.embed(request);
        inner = running;
        return await running.result;
      } finally {
        lease.release();
      }
    });
    return {
      result,
      cancel: () => {
        cancelled = true;
        inner?.cancel();
      },
    };
  }

  async textOp<K extends TextOp["kind"]>(op: Extract<TextOp, { kind: K }>): Promise<Extract<TextOpResult, { kind: K }>> {
    const lease = await this.lease();
    try {
      return await lease.worker.textOp(op);
    } finally {
      lease.release();
    }
  }

  /** Loads the adapter in the serving worker (loading the model first), then requests may select it. */
  async addAdapter(spec: AdapterSpec): Promise<Adapter> {
    const lease = await this.lease();
    try {
      return await lease.worker.addAdapter(spec);
    } finally {
      lease.release();
    }
  }

  /** Requests can no longer select the adapter; a loaded worker frees it once the requests using it end. */
  removeAdapter(id: string): Adapter | undefined {
    return this.worker ? this.worker.removeAdapter(id) : this.adapters.remove(id);
  }

  /** The serving worker's engine status; undefined when the model is not loaded. */
  status(drainRounds = false, timeoutMs = 2000): Promise<EngineStatus | undefined> {
    return this.worker ? this.worker.status(drainRounds, timeoutMs) : Promise.resolve(undefined);
  }

  /** Ends everything: requests in flight get `shutting_down`, every worker stops. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    await Promise.all([...this.live].map((w) => w.stop()));
    this.worker = null;
    this.resident = false;
  }

  private async lease(keepAlive?: KeepAliveMs): Promise<Lease> {
    this.waiting++;
    clearTimeout(this.idleTimer);
    this.expiresAt = null;
    let worker: ModelWorker;
    try {
      worker = await this.load();
    } finally {
      this.waiting--;
    }
    if (keepAlive !== undefined) this.keepAliveMs = keepAlive;
    this.leases.set(worker, (this.leases.get(worker) ?? 0) + 1);
    this.lastUsed = Date.now();
    let released = false;
    return {
      worker,
      release: () => {
        if (released) return;
        released = true;
        this.leases.set(worker, this.leases.get(worker)! - 1);
        this.lastUsed = Date.now();
        this.scheduleIdleUnload();
      },
    };
  }

  /** Once nothing uses the model, unloads it after its keep-alive. */
  private scheduleIdleUnload(): void {
    clearTimeout(this.idleTimer);
    this.expiresAt = null;
    if (!this.worker || !this.idle || this.keepAliveMs === Infinity || this.stopped) return;
    this.expiresAt = Date.now() + this.keepAliveMs;
    this.idleTimer = setTimeout(() => {
      if (this.idle) void this.unload(`idle for ${this.keepAliveMs} ms (keep_alive)`);
    }, this.keepAliveMs).unref();
  }

  private async startWorker(source: string, admit: boolean, settings: Config["model"] = this.spec.model): Promise<ModelWorker> {
    let path: string;
    try {
      path = await this.host.resolveSource(source);
    } catch (err) {
      throw this.loadFailed(err);
    }
    if (admit) await this.host.makeRoom(this, path);
    if (this.stopped) throw shuttingDown();
    const worker = this.host.createWorker(this.id, path, settings, this.adapters);
    this.live.add(worker);
    try {
      await worker.start();
    } catch (err) {
      if (admit) this.resident = false;
      this.live.delete(worker);
      await worker.stop();
      throw this.stopped ? shuttingDown() : this.loadFailed(err);
    }
    this.lastError = null;
    return worker;
  }

  private loadFailed(err: unknown): EngineError {
    const reason = err instanceof Error ? err.message : String(err);
    this.lastError = reason;
    this.host.logger.error({ model: this.id, err: reason }, "model load failed");
    return new EngineError({ kind: "model_load_failed", model: this.id, reason });
  }

  /** Stops `worker` once the requests it holds have finished. */
  private async retire(worker: ModelWorker): Promise<void> {
    while ((this.leases.get(worker) ?? 0) > 0 && !this.stopped) await new Promise((r) => setTimeout(r, RETIRE_POLL_MS));
    this.leases.delete(worker);
    this.live.delete(worker);
    await worker.stop();
  }
}

const shuttingDown = () => new EngineError({ kind: "shutting_down", retryAfterSeconds: 5 });
