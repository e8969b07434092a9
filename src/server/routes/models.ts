import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import type { ModelWorker } from "../../router/model-worker.js";
import type { Adapter } from "../../router/adapters.js";
import { ApiError, modelNotFound } from "../../openai/errors.js";
import type { ModelRegistry } from "../../router/registry.js";

const STARTED = Math.floor(Date.now() / 1000);

const describe = (w: ModelWorker) => ({
  id: w.id,
  object: "model" as const,
  created: STARTED,
  owned_by: "edgellm",
  ...(w.info && { meta: { context_length: w.info.contextSize, n_ctx_train: w.info.trainContextSize, size_bytes: w.info.sizeBytes } }),
});

/** A LoRA adapter served as its own model, as vLLM lists them: `<model>:<adapter>` with its `parent`. */
const describeAdapter = (w: ModelWorker, a: Adapter) => ({
  id: `${w.id}:${a.id}`,
  object: "model" as const,
  created: STARTED,
  owned_by: "edgellm",
  parent: w.id,
});

/** What the adapter admin routes show: the index is what a request's `lora[].id` may use instead of the name. */
const adapterEntry = (w: ModelWorker, a: Adapter) => ({
  id: a.id,
  object: "lora_adapter" as const,
  index: w.adapters.list().indexOf(a),
  model: `${w.id}:${a.id}`,
  path: a.path,
  scale: a.scale,
});

const AddAdapterBody = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, description: "the adapter's name (default: the file name without .gguf)" })),
    path: Type.String({ minLength: 1, description: "the adapter GGUF's path on the server" }),
    scale: Type.Optional(Type.Number({ description: "the scale when a request gives none (default 1)" })),
  },
  { additionalProperties: false },
);
type AddAdapterBody = Static<typeof AddAdapterBody>;

const adapterNotServed = (model: string, id: string) =>
  new ApiError(404, "not_found_error", `The model '${model}' has no LoRA adapter '${id}'`, { param: "adapter", code: "adapter_not_found" });

/** The admin routes name a served model exactly, never one of its adapter ids. */
function servedModel(registry: ModelRegistry, id: string): ModelWorker {
  const worker = registry.resolve(id);
  if (worker.id !== id) throw modelNotFound(id);
  return worker;
}

export const modelRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.get("/v1/models", async () => ({
    object: "list",
    data: registry.list().flatMap((w) => [describe(w), ...w.adapters.list().map((a) => describeAdapter(w, a))]),
  }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    const worker = registry.resolve(req.params.id);
    const adapter = worker.adapters.byModelId(worker.id, req.params.id);
    return adapter ? describeAdapter(worker, adapter) : describe(worker);
  });

  // LoRA adapters at run time (admin: behind the API keys like every route not listed public).
  app.get<{ Params: { id: string } }>("/v1/models/:id/adapters", async (req) => {
    const worker = servedModel(registry, req.params.id);
    return { object: "list", data: worker.adapters.list().map((a) => adapterEntry(worker, a)) };
  });
  app.post<{ Params: { id: string }; Body: AddAdapterBody }>("/v1/models/:id/adapters", { schema: { body: AddAdapterBody } }, async (req, reply) => {
    const worker = servedModel(registry, req.params.id);
    const adapter = await worker.addAdapter(req.body);
    return reply.code(201).send(adapterEntry(worker, adapter));
  });
  app.delete<{ Params: { id: string; adapter: string } }>("/v1/models/:id/adapters/:adapter", async (req) => {
    const worker = servedModel(registry, req.params.id);
    const adapter = worker.removeAdapter(req.params.adapter);
    if (!adapter) throw adapterNotServed(worker.id, req.params.adapter);
    return { id: adapter.id, object: "lora_adapter.deleted", deleted: true };
  });
};
