/**
 * LoRA adapters inside a worker: loaded once per file on the model, applied per context.
 * llama.cpp applies adapters to a whole context (llama_set_adapters_lora), so the scheduler
 * runs one adapter set per round and calls `apply` with its key before the round's steps.
 *
 * node-llama-cpp 3.22 loads adapters only at createContext; its internals do the rest:
 * LlamaModel._getOrLoadLora (load once per resolved path, cached in _loraAdapters), the
 * addon context's setLoras (replaces the context's whole adapter list) and the addon
 * adapter's dispose (llama_adapter_lora_free).
 */
import path from "node:path";
import type { LlamaContext, LlamaModel } from "node-llama-cpp";
import type { AdapterUse } from "./types.js";
import { EngineError } from "./errors.js";

interface AddonLora {
  dispose(): Promise<void>;
}

interface ModelInternals {
  _getOrLoadLora(filePath: string): Promise<AddonLora>;
  _loraAdapters: Map<string, AddonLora>;
}

interface ContextInternals {
  _ctx: { setLoras(loras: AddonLora[], scales: number[]): void };
}

/** The canonical key of an adapter set: "" for none, else its (path, scale) pairs sorted by path. */
export function adapterKey(uses: readonly AdapterUse[] | undefined): string {
  const active = (uses ?? []).filter((u) => u.scale !== 0);
  if (active.length === 0) return "";
  const sorted = [...active].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return JSON.stringify(sorted.map((u) => [u.path, u.scale]));
}

function parseKey(key: string): Array<[string, number]> {
  return key === "" ? [] : (JSON.parse(key) as Array<[string, number]>);
}

export class LoraAdapters {
  /** Adapter files requests may use (resolved paths). */
  private readonly known = new Set<string>();
  /** Admitted requests per adapter file: a removed adapter is freed once none uses it. */
  private readonly users = new Map<string, number>();
  /** Removed adapters still loaded. */
  private readonly retiring = new Set<string>();
  /** The adapter set the context has now. */
  private applied = "";

  constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly onError: (msg: string, fields: Record<string, unknown>) => void,
  ) {}

  private get modelInternals(): ModelInternals {
    return this.model as unknown as ModelInternals;
  }

  /** Loads the adapter file for this model; a file llama.cpp rejects is a 400 naming `path`. */
  async load(file: string): Promise<void> {
    const resolved = path.resolve(file);
    try {
      await this.modelInternals._getOrLoadLora(resolved);
    } catch (err) {
      throw new EngineError({ kind: "adapter_rejected", file, reason: err instanceof Error ? err.message : String(err) });
    }
    this.known.add(resolved);
    this.retiring.delete(resolved);
  }

  /** Requests can no longer select the adapter; it is freed once the requests using it end. */
  async unload(file: string): Promise<void> {
    const resolved = path.resolve(file);
    if (!this.known.delete(resolved)) return;
    this.retiring.add(resolved);
    await this.sweep();
  }

  /** Takes the request's adapters for its lifetime; a 400 if one was removed since the request was routed. */
  acquire(uses: readonly AdapterUse[] | undefined): void {
    for (const u of uses ?? []) {
      if (!this.known.has(u.path)) {
        throw new EngineError({ kind: "adapter_removed", path: u.path });
      }
    }
    for (const u of uses ?? []) this.users.set(u.path, (this.users.get(u.path) ?? 0) + 1);
  }

  release(uses: readonly AdapterUse[] | undefined): void {
    for (const u of uses ?? []) this.users.set(u.path, (this.users.get(u.path) ?? 1) - 1);
    this.sweep().catch((err: unknown) => this.onError("freeing a removed LoRA adapter failed", { err: String(err) }));
  }

  /** Gives the context exactly the adapter set `key` (between rounds: no decode is running). */
  async apply(key: string): Promise<void> {
    if (key === this.applied) return;
    const set = parseKey(key);
    const loras = await Promise.all(set.map(([file]) => this.modelInternals._getOrLoadLora(file)));
    this.setLoras(loras, set.map(([, scale]) => scale));
    this.applied = key;
  }

  private setLoras(loras: AddonLora[], scales: number[]): void {
    (this.context as unknown as ContextInternals)._ctx.setLoras(loras, scales);
  }

  /**
   * Frees removed adapters no admitted request uses. None of their requests is running, so no
   * round is decoding with them; the context drops them first if it still has them applied.
   */
  private async sweep(): Promise<void> {
    for (const file of [...this.retiring]) {
      if ((this.users.get(file) ?? 0) > 0) continue;
      this.retiring.delete(file);
      this.users.delete(file);
      if (parseKey(this.applied).some(([f]) => f === file)) {
        this.setLoras([], []);
        this.applied = "";
      }
      const lora = this.modelInternals._loraAdapters.get(file);
      this.modelInternals._loraAdapters.delete(file);
      await lora?.dispose();
    }
  }
}
