/** The served models by id. Routing is by exact id; with one model, its worker serves every request. */
import type { ModelWorker } from "./model-worker.js";
import { modelNotFound } from "../openai/errors.js";

export class ModelRegistry {
  private readonly workers = new Map<string, ModelWorker>();

  add(worker: ModelWorker): void {
    this.workers.set(worker.id, worker);
  }

  list(): ModelWorker[] {
    return [...this.workers.values()];
  }

  /** The worker for `model`, or a 404 model_not_found. */
  resolve(model: string): ModelWorker {
    const worker = this.workers.get(model);
    if (!worker) throw modelNotFound(model);
    return worker;
  }

  allReady(): boolean {
    return this.workers.size > 0 && this.list().every((w) => w.state === "ready");
  }

  async stop(): Promise<void> {
    await Promise.all(this.list().map((w) => w.stop()));
  }
}
