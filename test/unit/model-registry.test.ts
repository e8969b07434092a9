/** Which worker a request's `model` selects; workers are stand-ins (only their ids matter here). */
import { describe, it, expect } from "vitest";
import { ModelRegistry } from "../../src/router/registry.js";
import type { ModelWorker } from "../../src/router/model-worker.js";
import { EngineError } from "../../src/engine/errors.js";
import { httpError } from "../../src/server/engine-errors.js";

const worker = (id: string) => ({ id }) as unknown as ModelWorker;

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
