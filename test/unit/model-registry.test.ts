/** Which model a request's `model` selects; models are stand-ins (only their ids matter here). */
import { describe, it, expect } from "vitest";
import pino from "pino";
import { ModelRegistry as Registry } from "../../src/router/registry.js";
import type { ServedModel } from "../../src/router/served-model.js";
import { EngineError } from "../../src/engine/errors.js";
import { httpError } from "../../src/server/engine-errors.js";
import { loadConfig } from "../../src/config/load.js";
import { parseKeepAlive } from "../../src/server/keep-alive.js";

const worker = (id: string) => ({ id }) as unknown as ServedModel;
const options = { config: loadConfig({}, {}), logger: pino({ level: "silent" }) };
class ModelRegistry extends Registry {
  constructor() {
    super(options);
  }
}

const thrownBy = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
};

describe("ModelRegistry.resolve", () => {
  it("sends a request without `model` to the only model served", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    expect(registry.resolve(undefined).id).toBe("a");
  });

  it("asks for `model` (a 400) when several models are served", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    registry.add(worker("b"));
    const err = thrownBy(() => registry.resolve(undefined));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).info).toEqual({ kind: "model_required", served: 2 });
    const http = httpError((err as EngineError).info);
    expect(http.status).toBe(400);
    expect(http.toBody().error).toMatchObject({ param: "model", code: "missing_required_parameter", type: "invalid_request_error" });
  });

  it("an unknown id is model_not_found, a 404", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    const err = thrownBy(() => registry.resolve("z"));
    expect((err as EngineError).info).toEqual({ kind: "model_not_found", model: "z" });
    expect(httpError((err as EngineError).info)).toMatchObject({ status: 404, code: "model_not_found", param: "model" });
  });
});

describe("ModelRegistry.resolve with a default model", () => {
  it("sends a request without `model` to the default model (model.source) when several are served", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    registry.add(worker("b"));
    registry.defaultId = "b";
    expect(registry.resolve(undefined).id).toBe("b");
    expect(registry.resolve("a").id).toBe("a");
  });
});

describe("keep_alive, as Ollama reads it", () => {
  it("takes duration strings and numbers of seconds; 0 unloads at once, negative keeps loaded", () => {
    expect(parseKeepAlive(undefined)).toBeUndefined();
    expect(parseKeepAlive("5m")).toBe(300_000);
    expect(parseKeepAlive("1h30m")).toBe(5_400_000);
    expect(parseKeepAlive("1.5s")).toBe(1500);
    expect(parseKeepAlive("250ms")).toBe(250);
    expect(parseKeepAlive(30)).toBe(30_000);
    expect(parseKeepAlive("30")).toBe(30_000);
    expect(parseKeepAlive(0)).toBe(0);
    expect(parseKeepAlive("0s")).toBe(0);
    expect(parseKeepAlive(-1)).toBe(Infinity);
    expect(parseKeepAlive("-1m")).toBe(Infinity);
  });

  it("anything else is a 400 naming keep_alive", () => {
    for (const bad of ["soon", "5x", true, {}, "", Number.NaN]) {
      expect(() => parseKeepAlive(bad)).toThrow(expect.objectContaining({ status: 400, param: "keep_alive" }));
    }
  });
});
