/**
 * LoraAdapters' bookkeeping over fakes of the node-llama-cpp internals it uses (the model's
 * adapter cache and loader, the addon context's setLoras): which adapters the context gets,
 * and that a removed adapter is freed only once no admitted request uses it.
 */
import { describe, expect, it } from "vitest";
import path from "node:path";
import type { LlamaContext, LlamaModel } from "node-llama-cpp";
import { adapterKey, LoraAdapters } from "../../src/engine/lora.js";
import { asHttpError } from "../../src/server/engine-errors.js";
import { thrownAsHttp } from "../helpers/errors.js";

class FakeLora {
  disposed = false;
  constructor(readonly file: string) {}
  async dispose() {
    this.disposed = true;
  }
}

function setup() {
  const loaded: FakeLora[] = [];
  const applied: Array<Array<[string, number]>> = [];
  const model = {
    _loraAdapters: new Map<string, FakeLora>(),
    async _getOrLoadLora(file: string) {
      if (file.endsWith("bad.gguf")) throw new Error("bad lora");
      let lora = this._loraAdapters.get(file);
      if (!lora) {
        lora = new FakeLora(file);
        loaded.push(lora);
        this._loraAdapters.set(file, lora);
      }
      return lora;
    },
  };
  const context = {
    _ctx: { setLoras: (loras: FakeLora[], scales: number[]) => applied.push(loras.map((l, i) => [path.basename(l.file), scales[i]!])) },
  };
  const errors: string[] = [];
  const loras = new LoraAdapters(model as unknown as LlamaModel, context as unknown as LlamaContext, (msg) => errors.push(msg));
  return { loras, model, loaded, applied, errors };
}

const A = path.resolve("a.gguf");
const B = path.resolve("b.gguf");

describe("adapterKey", () => {
  it("is empty for no adapters (or only scale 0) and does not depend on order", () => {
    expect(adapterKey(undefined)).toBe("");
    expect(adapterKey([{ path: A, scale: 0 }])).toBe("");
    expect(adapterKey([{ path: B, scale: 1 }, { path: A, scale: 0.5 }])).toBe(adapterKey([{ path: A, scale: 0.5 }, { path: B, scale: 1 }]));
    expect(adapterKey([{ path: A, scale: 0.5 }])).not.toBe(adapterKey([{ path: A, scale: 1 }]));
  });
});

describe("LoraAdapters", () => {
  it("gives the context exactly the round's adapter set, and only when it changes", async () => {
    const { loras, applied } = setup();
    await loras.load("a.gguf");
    await loras.load("b.gguf");
    await loras.apply("");
    expect(applied).toEqual([]);
    await loras.apply(adapterKey([{ path: A, scale: 1 }, { path: B, scale: 0.5 }]));
    await loras.apply(adapterKey([{ path: B, scale: 0.5 }, { path: A, scale: 1 }]));
    await loras.apply("");
    expect(applied).toEqual([[["a.gguf", 1], ["b.gguf", 0.5]], []]);
  });

  it("refuses a file llama.cpp rejects with a 400 on param path", async () => {
    const { loras } = setup();
    expect(asHttpError(await loras.load("bad.gguf").catch((err: unknown) => err))).toMatchObject({ status: 400, param: "path", code: "invalid_adapter" });
  });

  it("frees a removed adapter once its last request ends, dropping it from the context first", async () => {
    const { loras, model, loaded, applied } = setup();
    await loras.load("a.gguf");
    const uses = [{ path: A, scale: 1 }];
    loras.acquire(uses);
    await loras.apply(adapterKey(uses));
    await loras.unload("a.gguf");
    // Still in use: loaded and applied; but no new request may take it.
    expect(loaded[0]!.disposed).toBe(false);
    expect(thrownAsHttp(() => loras.acquire(uses))).toMatchObject({ status: 400, param: "lora", code: "adapter_not_found" });
    loras.release(uses);
    await new Promise((r) => setImmediate(r));
    expect(applied.at(-1)).toEqual([]);
    expect(loaded[0]!.disposed).toBe(true);
    expect(model._loraAdapters.has(A)).toBe(false);
    // Added again, it is loaded afresh.
    await loras.load("a.gguf");
    loras.acquire(uses);
    expect(loaded).toHaveLength(2);
  });

  it("frees an unused adapter at once, and leaves the context alone when it does not have it", async () => {
    const { loras, loaded, applied } = setup();
    await loras.load("a.gguf");
    await loras.load("b.gguf");
    await loras.apply(adapterKey([{ path: B, scale: 1 }]));
    await loras.unload("a.gguf");
    expect(loaded[0]!.disposed).toBe(true);
    expect(applied).toEqual([[["b.gguf", 1]]]);
  });
});
