/** POST /v1/embeddings: OpenAI's shape, served by models whose GGUF declares a pooling type. */
import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../app.js";
import { EmbeddingRequestBody, embeddingInputs, embeddingList } from "../../openai/embeddings.js";

export const embeddingRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.post<{ Body: EmbeddingRequestBody }>("/v1/embeddings", { schema: { body: EmbeddingRequestBody } }, async (req, reply) => {
    const input = embeddingInputs(req.body);
    const worker = registry.resolve(req.body.model);
    const { result, cancel } = worker.embed({ requestId: req.id, input });
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) cancel();
    });
    const { vectors, promptTokens } = await result;
    return embeddingList(worker.id, vectors, promptTokens, req.body.encoding_format ?? "float");
  });
};
