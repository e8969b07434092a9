/** Which worker a request's `model` selects; workers are stand-ins (only their ids matter here). */
import { describe, it, expect } from "vitest";
import { ModelRegistry } from "../../src/router/registry.js";
import type { ModelWorker } from "../../src/router/model-worker.js";
import { ApiError } from "../../src/openai/errors.js";

const worker = (id: string) => ({ id }) as unknown as ModelWorker;

describe("ModelRegistry.resolve", () => {
  it("sends a request without `model` to the only model served", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    expect(registry.resolve(undefined).id).toBe("a");
  });

  it("asks for `model` with a 400 when several models are served", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    registry.add(worker("b"));
    const err = (() => {
      try {
        return registry.resolve(undefined);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).toBody().error).toMatchObject({ param: "model", code: "missing_required_parameter", type: "invalid_request_error" });
    expect((err as ApiError).status).toBe(400);
  });

  it("an unknown id is a 404 model_not_found", () => {
    const registry = new ModelRegistry();
    registry.add(worker("a"));
    expect(() => registry.resolve("z")).toThrow(expect.objectContaining({ status: 404, code: "model_not_found" }));
  });
});
