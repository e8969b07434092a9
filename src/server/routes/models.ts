/**
 * The model list (OpenAI's shape, with each model's load state as llama-server's router reports
 * it, and each LoRA adapter as its own model as vLLM lists them), the admin calls that load,
 * unload and reload models, and the LoRA adapter admin routes. The admin calls sit behind the
 * API keys like every non-public route.
 */
import type { FastifyPluginAsync } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import type { ServerDeps } from "../deps.js";
import type { ServedModel } from "../../router/served-model.js";
import type { Adapter } from "../../router/adapters.js";
import type { ModelRegistry } from "../../router/registry.js";
import { ApiError, modelNotFound } from "../../openai/errors.js";
import { keepAliveOf } from "../keep-alive.js";

const STARTED = Math.floor(Date.now() / 1000);

const describe = (m: ServedModel) => ({
  id: m.id,
  object: "model" as const,
  created: STARTED,
  owned_by: "edgellm",
  status: {
    value: m.loadStatus,
    ...(m.loadStatus === "unloaded" && m.lastError !== null && { failed: true, error: m.lastError }),
  },
  /** Ollama's /api/ps field: when an idle model unloads; null = not scheduled. */
  expires_at: m.expiresAt === null ? null : new Date(m.expiresAt).toISOString(),
  source: m.source,
  variant: m.variant,
  ...(m.info && { meta: { context_length: m.info.contextSize, n_ctx_train: m.info.trainContextSize, size_bytes: m.info.sizeBytes } }),
});

/** A LoRA adapter served as its own model, as vLLM lists them: `<model>:<adapter>` with its `parent`. */
const describeAdapter = (m: ServedModel, a: Adapter) => ({
  id: `${m.id}:${a.id}`,
  object: "model" as const,
  created: STARTED,
  owned_by: "edgellm",
  parent: m.id,
});

/** What the adapter admin routes show: the index is what a request's `lora[].id` may use instead of the name. */
const adapterEntry = (m: ServedModel, a: Adapter) => ({
  id: a.id,
  object: "lora_adapter" as const,
  index: m.adapters.list().indexOf(a),
  model: `${m.id}:${a.id}`,
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

const ModelAction = Type.Object({ model: Type.String({ minLength: 1 }) }, { additionalProperties: true });
type ModelAction = Static<typeof ModelAction>;

const adapterNotServed = (model: string, id: string) =>
  new ApiError(404, "not_found_error", `The model '${model}' has no LoRA adapter '${id}'`, { param: "adapter", code: "adapter_not_found" });

/** The admin routes name a served model exactly, never one of its adapter ids. */
function servedModel(registry: ModelRegistry, id: string): ServedModel {
  const model = registry.resolve(id);
  if (model.id !== id) throw modelNotFound(id);
  return model;
}

export const modelRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.get("/v1/models", async () => ({
    object: "list",
    data: registry.list().flatMap((m) => [describe(m), ...m.adapters.list().map((a) => describeAdapter(m, a))]),
  }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    const model = registry.resolve(req.params.id);
    const adapter = model.adapters.byModelId(model.id, req.params.id);
    return adapter ? describeAdapter(model, adapter) : describe(model);
  });

  /** Loads the model (unloading least recently used idle ones to make room) and answers once it is ready. */
  app.post<{ Body: ModelAction }>("/v1/models/load", { schema: { body: ModelAction } }, async (req) => {
    const model = servedModel(registry, req.body.model);
    await model.load(keepAliveOf(req.body));
    return { success: true, model: describe(model) };
  });

  /** Unloads the model; requests in flight finish first. */
  app.post<{ Body: ModelAction }>("/v1/models/unload", { schema: { body: ModelAction } }, async (req) => {
    const model = servedModel(registry, req.body.model);
    await model.unload("unloaded by POST /v1/models/unload");
    return { success: true, model: describe(model) };
  });

  /** Blue-green reload of the model's worker: the new one takes new requests once ready, the old one finishes its own. */
  app.post<{ Body: ModelAction }>("/v1/models/reload", { schema: { body: ModelAction } }, async (req) => {
    const model = servedModel(registry, req.body.model);
    await model.reload("reloaded by POST /v1/models/reload");
    return { success: true, model: describe(model) };
  });

  // LoRA adapters at run time (admin: behind the API keys like every route not listed public).
  app.get<{ Params: { id: string } }>("/v1/models/:id/adapters", async (req) => {
    const model = servedModel(registry, req.params.id);
    return { object: "list", data: model.adapters.list().map((a) => adapterEntry(model, a)) };
  });
  app.post<{ Params: { id: string }; Body: AddAdapterBody }>("/v1/models/:id/adapters", { schema: { body: AddAdapterBody } }, async (req, reply) => {
    const model = servedModel(registry, req.params.id);
    const adapter = await model.addAdapter(req.body);
    return reply.code(201).send(adapterEntry(model, adapter));
  });
  app.delete<{ Params: { id: string; adapter: string } }>("/v1/models/:id/adapters/:adapter", async (req) => {
    const model = servedModel(registry, req.params.id);
    const adapter = model.removeAdapter(req.params.adapter);
    if (!adapter) throw adapterNotServed(model.id, req.params.adapter);
    return { id: adapter.id, object: "lora_adapter.deleted", deleted: true };
  });
};
