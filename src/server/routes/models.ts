import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import type { ModelWorker } from "../../router/model-worker.js";

const STARTED = Math.floor(Date.now() / 1000);

const describe = (w: ModelWorker) => ({
  id: w.id,
  object: "model" as const,
  created: STARTED,
  owned_by: "edgellm",
  ...(w.info && { meta: { context_length: w.info.contextSize, n_ctx_train: w.info.trainContextSize, size_bytes: w.info.sizeBytes } }),
});

export const modelRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.get("/v1/models", async () => ({ object: "list", data: registry.list().map(describe) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => describe(registry.resolve(req.params.id)));
};
