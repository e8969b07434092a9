import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import { refreshFromWorkers } from "../../metrics/collect.js";

export const metricsRoutes: FastifyPluginAsync<ServerDeps> = async (app, { metrics, registry }) => {
  app.get("/metrics", async (_req, reply) => {
    await refreshFromWorkers(metrics, registry);
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
