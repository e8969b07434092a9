import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import { ApiError } from "../../openai/errors.js";
import type { WorkerState } from "../../router/model-worker.js";

/**
 * 200 when every model is ready; 503 with an OpenAI error while a model loads, while a crashed
 * worker restarts ("degraded"), or when one cannot load. While the server drains for shutdown
 * the drain guard answers 503 before this handler runs.
 */
export const healthRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  const handler = async (_req: unknown, reply: import("fastify").FastifyReply) => {
    if (registry.allReady()) return { status: "ok" };
    const states = Object.fromEntries(registry.list().map((w) => [w.id, w.state]));
    const has = (state: WorkerState) => Object.values(states).includes(state);
    const [status, code, message] = has("restarting")
      ? ["degraded", "worker_restarting", "A model worker stopped unexpectedly and is restarting"]
      : has("loading")
        ? ["loading", "model_loading", "Model is loading"]
        : ["unavailable", "model_unavailable", "Model is unavailable"];
    const e = new ApiError(503, "service_unavailable_error", message, { code });
    return reply.code(503).header("retry-after", "2").send({ ...e.toBody(), status, models: states });
  };
  app.get("/health", handler);
  app.get("/v1/health", handler);
};
