/**
 * The LoRA adapters one model serves, kept in the main process: configured ones (`model.lora`)
 * and those added at run time. Requests select them with llama-server's `lora` field or the
 * vLLM-style model id `<model>:<adapter>`; this turns either into the adapter files and scales
 * the worker applies.
 */
import path from "node:path";
import type { AdapterUse } from "../engine/types.js";
import { EngineError } from "../engine/errors.js";

export interface Adapter {
  /** Its name: what `lora[].id` and the model id `<model>:<id>` use. */
  readonly id: string;
  /** Absolute path of the adapter GGUF. */
  readonly path: string;
  /** Scale when a request names the adapter without one (or through its model id). */
  readonly scale: number;
}

/** What configures or adds an adapter: `id` defaults to the file name without `.gguf`, `scale` to 1. */
export interface AdapterSpec {
  id?: string;
  path: string;
  scale?: number;
}

/** One entry of a request's `lora` field: an adapter by index (in the GET list) or by name (`id` or `name`). */
export interface LoraSelection {
  id?: number | string;
  name?: string;
  scale?: number;
}

const ADAPTER_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const adapterNotFound = (model: string, id: number | string) =>
  new EngineError({
    kind: "adapter_invalid",
    param: "lora",
    code: "adapter_not_found",
    reason: `The model '${model}' has no LoRA adapter ${typeof id === "number" ? `at index ${id}` : `'${id}'`} (see GET /v1/models/${model}/adapters)`,
  });

/** The adapter a spec describes, with its defaults; a 400 (param `param`) when the id is unusable. */
export function toAdapter(spec: AdapterSpec, param = "id"): Adapter {
  const id = spec.id ?? path.basename(spec.path).replace(/\.gguf$/i, "");
  if (!ADAPTER_ID_PATTERN.test(id)) {
    throw new EngineError({
      kind: "adapter_invalid",
      param,
      code: "invalid_adapter_id",
      reason: `Adapter id '${id}' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    });
  }
  return { id, path: path.resolve(spec.path), scale: spec.scale ?? 1 };
}

/** A `model.lora` entry: a spec, or "[id=]path" as --lora gives it. */
export function parseAdapterSpec(entry: string | AdapterSpec): AdapterSpec {
  if (typeof entry !== "string") return entry;
  const eq = entry.indexOf("=");
  return eq > 0 ? { id: entry.slice(0, eq), path: entry.slice(eq + 1) } : { path: entry };
}

export class AdapterSet {
  private readonly adapters: Adapter[] = [];

  constructor(entries: ReadonlyArray<string | AdapterSpec> = []) {
    for (const entry of entries) this.add(toAdapter(parseAdapterSpec(entry), "model.lora"));
  }

  list(): readonly Adapter[] {
    return this.adapters;
  }

  get(id: string): Adapter | undefined {
    return this.adapters.find((a) => a.id === id);
  }

  /** Adapter files in use (one file may be served under several ids). */
  paths(): string[] {
    return [...new Set(this.adapters.map((a) => a.path))];
  }

  /** A 409 when an adapter already has this id. */
  ensureFree(id: string): void {
    if (this.get(id)) {
      throw new EngineError({ kind: "adapter_exists", id });
    }
  }

  add(adapter: Adapter): void {
    this.ensureFree(adapter.id);
    this.adapters.push(adapter);
  }

  /** Removes the adapter; returns it, or undefined when there is none by that id. */
  remove(id: string): Adapter | undefined {
    const at = this.adapters.findIndex((a) => a.id === id);
    return at === -1 ? undefined : this.adapters.splice(at, 1)[0];
  }

  /** The adapter a model id `<model>:<adapter>` names, for the model `modelId`. */
  byModelId(modelId: string, requested: string | undefined): Adapter | undefined {
    return requested?.startsWith(`${modelId}:`) ? this.get(requested.slice(modelId.length + 1)) : undefined;
  }

  /**
   * The adapters a request for `requested` (the model `modelId` or one of its `<model>:<adapter>`
   * ids) runs with. The adapter of the model id runs at its configured scale; each `lora` entry
   * sets one adapter's scale (its configured one when the entry has none). As in llama-server,
   * adapters the request does not name are off, and an entry with scale 0 turns its adapter off.
   */
  select(modelId: string, requested: string | undefined, lora: readonly LoraSelection[] | undefined): AdapterUse[] {
    // By file: two ids of one file are one adapter to llama.cpp; the later entry wins.
    const scales = new Map<string, number>();
    const named = this.byModelId(modelId, requested);
    if (named) scales.set(named.path, named.scale);
    for (const [i, entry] of (lora ?? []).entries()) {
      const id = entry.id ?? entry.name;
      if (id === undefined) throw new EngineError({ kind: "adapter_invalid", param: "lora", code: "missing_required_parameter", reason: `lora[${i}] needs an 'id' (adapter index or name)` });
      const adapter = typeof id === "number" ? this.adapters[id] : this.get(id);
      if (!adapter) throw adapterNotFound(modelId, id);
      scales.set(adapter.path, entry.scale ?? adapter.scale);
    }
    return [...scales].filter(([, scale]) => scale !== 0).map(([file, scale]) => ({ path: file, scale }));
  }
}
