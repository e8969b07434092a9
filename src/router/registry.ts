/**
 * The served models by id. Routing is by exact id, or `<model>:<adapter>` for a model's LoRA
 * adapter; with one model, its worker serves every request.
 */
import type { ModelWorker } from "./model-worker.js";
import { EngineError } from "../engine/errors.js";

export class ModelRegistry {
  private readonly workers = new Map<string, ModelWorker>();

  add(worker: ModelWorker): void {
    this.workers.set(worker.id, worker);
  }

  list(): ModelWorker[] {
    return [...this.workers.values()];
  }

  /**
   * The worker for `model`, or model_not_found. A request without `model` goes to the one
   * served model (curl users often leave it out); with several it must say which.
   */
  resolve(model: string | undefined): ModelWorker {
    if (model === undefined) {
      const [only, ...others] = this.workers.values();
      if (only && others.length === 0) return only;
      throw new EngineError({ kind: "model_required", served: this.workers.size });
    }
    const worker = this.workers.get(model) ?? this.adapterOwner(model);
    if (!worker) throw new EngineError({ kind: "model_not_found", model });
    return worker;
  }

  /** For a vLLM-style LoRA model id `<model>:<adapter>`: the model's worker when it serves that adapter. */
  private adapterOwner(model: string): ModelWorker | undefined {
    const at = model.lastIndexOf(":");
    const worker = at > 0 ? this.workers.get(model.slice(0, at)) : undefined;
    return worker?.adapters.byModelId(worker.id, model) ? worker : undefined;
  }

  allReady(): boolean {
    return this.workers.size > 0 && this.list().every((w) => w.state === "ready");
  }

  async stop(): Promise<void> {
    await Promise.all(this.list().map((w) => w.stop()));
  }
}
