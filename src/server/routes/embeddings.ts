/** POST /v1/embeddings: OpenAI's shape, served by models whose GGUF declares a pooling type. */
import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import { EmbeddingRequestBody, embeddingInputs, embeddingList } from "../../openai/embeddings.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";
import { keepAliveOf } from "../keep-alive.js";

export const embeddingRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry, metrics }) => {
  app.post<{ Body: EmbeddingRequestBody }>("/v1/embeddings", { schema: { body: EmbeddingRequestBody }, config: { modelWork: true } }, async (req, reply) => {
    const input = embeddingInputs(req.body);
    const worker = registry.resolve(req.body.model);
    // Counted like vLLM counts pooling requests: prompt tokens and end-to-end latency, no generation.
    const observer = new RequestMetrics(metrics, worker.id);
    const { result, cancel } = worker.embed({ requestId: req.id, input }, keepAliveOf(req.body));
    reply.raw.on("close", () => {
      if (reply.raw.writableFinished) return;
      cancel();
      observer.disconnected();
    });
    const { vectors, promptTokens } = await result;
    observer.accepted(promptTokens);
    observer.completed();
    req.summary = observer.summary;
    return embeddingList(worker.id, vectors, promptTokens, req.body.encoding_format ?? "float");
  });
};
