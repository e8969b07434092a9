/**
 * The served models by id (or `<model>:<adapter>` for a model's LoRA adapter), and the rules
 * that decide which of them are resident: at most `model.maxLoaded` at once and within the
 * memory budget, the least recently used idle model unloaded first, never one with requests in flight.
 */
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import { EngineError } from "../engine/errors.js";
import { resolveModel } from "../models/resolve.js";
import { estimateCacheDir } from "../engine/estimate-cache.js";
import { repackCacheRoot } from "../engine/repack-cache.js";
import { ModelWorker } from "./model-worker.js";
import { ServedModel, type ModelHost, type ModelSpec } from "./served-model.js";

export interface RegistryOptions {
  config: Config;
  logger: Logger;
  /** Bytes a model would take once loaded (memory admission); undefined skips the check. */
  estimateBytes?: (path: string, model: Config["model"]) => Promise<number>;
  /** Called for every worker created, before it starts (metrics hooks). */
  onWorker?: (model: ServedModel, worker: ModelWorker) => void;
}

const MiB = 2 ** 20;
const mib = (bytes: number) => Math.ceil(bytes / MiB);
const ADMISSION_POLL_MS = 100;

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();
  /** The model a request without `model` goes to: the one `model.source` names. */
  defaultId: string | undefined;
  /** Admissions run one at a time, so two loads cannot both take the last free place. */
  private admissions: Promise<unknown> = Promise.resolve();
  private readonly host: ModelHost;

  constructor(private readonly options: RegistryOptions) {
    const { config, logger } = options;
    this.host = {
      logger,
      defaultKeepAliveMs: config.model.idleUnloadSec > 0 ? config.model.idleUnloadSec * 1000 : Infinity,
      resolveSource: async (source) => (await resolveModel(source, config.model.dir)).path,
      createWorker: (id, path, model, adapters) => {
        const engine = { modelPath: path, modelId: id, model, generation: config.generation, limits: config.limits, estimateCacheDir: estimateCacheDir(config), repackCacheDir: config.model.repackCache ? repackCacheRoot(config) : undefined };
        const worker = new ModelWorker(id, engine, logger, {
          requestTimeoutMs: config.limits.requestTimeoutMs,
          adapters,
        });
        const served = this.models.get(id);
        if (served) options.onWorker?.(served, worker);
        return worker;
      },
      makeRoom: (incoming, path) => {
        const admitted = this.admissions.then(() => this.admit(incoming, path));
        this.admissions = admitted.catch(() => undefined);
        return admitted;
      },
    };
  }

  /** Serves `spec` (not loaded yet). */
  define(spec: ModelSpec): ServedModel {
    const model = new ServedModel(spec, this.host);
    this.add(model);
    return model;
  }

  add(model: ServedModel): void {
    this.models.set(model.id, model);
  }

  get(id: string): ServedModel | undefined {
    return this.models.get(id);
  }

  list(): ServedModel[] {
    return [...this.models.values()];
  }

  /** Stops serving `id`: unloads it (its requests in flight finish first) and forgets it. */
  async remove(id: string): Promise<void> {
    const model = this.models.get(id);
    if (!model) return;
    this.models.delete(id);
    await model.unload("removed from the configuration");
    await model.stop();
  }

  /**
   * The model for `model`, or model_not_found. A request without `model` goes to the
   * default model (`model.source`), else to the only one served; with several it must say which.
   */
  resolve(model: string | undefined): ServedModel {
    if (model === undefined) {
      const fallback = this.defaultId === undefined ? undefined : this.models.get(this.defaultId);
      if (fallback) return fallback;
      const [only, ...others] = this.models.values();
      if (only && others.length === 0) return only;
      throw new EngineError({ kind: "model_required", served: this.models.size });
    }
    const served = this.models.get(model) ?? this.adapterOwner(model);
    if (!served) throw new EngineError({ kind: "model_not_found", model });
    return served;
  }

  /** For a vLLM-style LoRA model id `<model>:<adapter>`: the model when it serves that adapter. */
  private adapterOwner(model: string): ServedModel | undefined {
    const at = model.lastIndexOf(":");
    const served = at > 0 ? this.models.get(model.slice(0, at)) : undefined;
    return served?.adapters.byModelId(served.id, model) ? served : undefined;
  }

  /**
   * Health: every loaded or loading model is ready, and the default model has loaded (a default
   * model unloaded later for idleness or to make room does not count, one that failed does).
   */
  allReady(): boolean {
    const pending = (m: ServedModel) => m.id === this.defaultId && (m.lastUsed === 0 || m.lastError !== null);
    const counted = this.list().filter((m) => m.worker !== null || m.loadStatus === "loading" || pending(m));
    return counted.length > 0 && counted.every((m) => m.state === "ready");
  }

  async stop(): Promise<void> {
    await Promise.all(this.list().map((m) => m.stop()));
  }

  /**
   * Makes room for `incoming`: while model.maxLoaded models are resident, or the memory budget
   * would be exceeded, unloads the least recently used idle model. When every resident model is
   * busy, a load over the memory budget is refused at once (503 with the numbers); one over
   * model.maxLoaded waits for a model to become idle, up to model.loadTimeoutMs, then gets a 503.
   */
  private async admit(incoming: ServedModel, path: string): Promise<void> {
    const { maxLoaded, loadTimeoutMs } = this.options.config.model;
    const budget = this.memoryBudget();
    const needed = budget !== undefined && this.options.estimateBytes ? await this.options.estimateBytes(path, incoming.spec.model) : 0;
    const deadline = Date.now() + loadTimeoutMs;
    for (;;) {
      const resident = this.list().filter((m) => m !== incoming && m.resident);
      const used = resident.reduce((sum, m) => sum + m.estimateBytes, 0);
      const overCount = resident.length >= maxLoaded;
      const overMemory = budget !== undefined && needed + used > budget;
      if (!overCount && !overMemory) break;
      const victim = resident.filter((m) => m.loadStatus === "loaded" && m.idle).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (victim) {
        const why = overCount ? `model.maxLoaded is ${maxLoaded}` : `loading '${incoming.id}' (~${mib(needed)} MiB) would exceed the memory budget of ${mib(budget!)} MiB`;
        await victim.unload(`least recently used: ${why}`);
        continue;
      }
      // Alone over the budget: the worker's own check refuses it with the full breakdown.
      if (overMemory && resident.length === 0) break;
      if (overMemory) throw this.noMemory(incoming, needed, used, budget!);
      if (Date.now() >= deadline) {
        throw new EngineError({ kind: "model_capacity", model: incoming.id, loaded: resident.length, maxLoaded, retryAfterSeconds: 5 });
      }
      await new Promise((r) => setTimeout(r, ADMISSION_POLL_MS));
    }
    incoming.resident = true;
    incoming.estimateBytes = needed;
  }

  /** model.memoryBudgetMB, else the cgroup's memory limit; undefined when neither is set. */
  private memoryBudget(): number | undefined {
    if (this.options.config.model.memoryBudgetMB > 0) return this.options.config.model.memoryBudgetMB * MiB;
    const limit = process.constrainedMemory();
    return limit > 0 && limit < Number.MAX_SAFE_INTEGER ? limit : undefined;
  }

  private noMemory(incoming: ServedModel, needed: number, used: number, budget: number): EngineError {
    return new EngineError({
      kind: "insufficient_memory",
      model: incoming.id,
      neededMiB: mib(needed),
      usedMiB: mib(used),
      budgetMiB: mib(budget),
      budget: this.options.config.model.memoryBudgetMB > 0 ? "model.memoryBudgetMB" : "cgroup",
      retryAfterSeconds: 5,
    });
  }
}
