import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../app.js";
import { ApiError } from "../../openai/errors.js";

/** 200 when every model is ready; 503 with an OpenAI error while loading or restarting a worker. */
export const healthRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  const handler = async (_req: unknown, reply: import("fastify").FastifyReply) => {
    if (registry.allReady()) return { status: "ok" };
    const states = Object.fromEntries(registry.list().map((w) => [w.id, w.state]));
    const loading = Object.values(states).some((s) => s === "loading");
    const e = new ApiError(503, "service_unavailable_error", loading ? "Model is loading" : "Model is unavailable", {
      code: loading ? "model_loading" : "model_unavailable",
    });
    return reply.code(503).header("retry-after", "2").send({ ...e.toBody(), status: loading ? "loading" : "unavailable", models: states });
  };
  app.get("/health", handler);
  app.get("/v1/health", handler);
};
