/**
 * The model list (OpenAI's shape, with each model's load state as llama-server's router reports
 * it) and the admin calls that load, unload and reload models. The admin calls sit behind the
 * API keys like every non-public route.
 */
import type { FastifyPluginAsync } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import type { ServerDeps } from "../deps.js";
import type { ServedModel } from "../../router/served-model.js";
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

const ModelAction = Type.Object({ model: Type.String({ minLength: 1 }) }, { additionalProperties: true });
type ModelAction = Static<typeof ModelAction>;

export const modelRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.get("/v1/models", async () => ({ object: "list", data: registry.list().map(describe) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => describe(registry.resolve(req.params.id)));

  /** Loads the model (unloading least recently used idle ones to make room) and answers once it is ready. */
  app.post<{ Body: ModelAction }>("/v1/models/load", { schema: { body: ModelAction } }, async (req) => {
    const model = registry.resolve(req.body.model);
    await model.load(keepAliveOf(req.body));
    return { success: true, model: describe(model) };
  });

  /** Unloads the model; requests in flight finish first. */
  app.post<{ Body: ModelAction }>("/v1/models/unload", { schema: { body: ModelAction } }, async (req) => {
    const model = registry.resolve(req.body.model);
    await model.unload("unloaded by POST /v1/models/unload");
    return { success: true, model: describe(model) };
  });

  /** Blue-green reload of the model's worker: the new one takes new requests once ready, the old one finishes its own. */
  app.post<{ Body: ModelAction }>("/v1/models/reload", { schema: { body: ModelAction } }, async (req) => {
    const model = registry.resolve(req.body.model);
    await model.reload("reloaded by POST /v1/models/reload");
    return { success: true, model: describe(model) };
  });
};
