import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import { ApiError } from "../../openai/errors.js";
import type { WorkerState } from "../../router/model-worker.js";

/**
 * 200 when the default model and every loaded one are ready (with a `fallback` detail while memory
 * pressure keeps a model on a smaller variant); 503 with an OpenAI error while a model loads, while a crashed
 * worker restarts ("degraded"), or when one cannot load. While the server drains for shutdown
 * the drain guard answers 503 before this handler runs.
 */
export const healthRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  const handler = async (_req: unknown, reply: import("fastify").FastifyReply) => {
    // Models serving a smaller variant because of memory pressure: which, why, with the numbers.
    const degraded = registry.list().filter((m) => m.fallback);
    const fallback = degraded.length
      ? { fallback: Object.fromEntries(degraded.map((m) => [m.id, { variant: m.variant, source: m.source, ...m.fallback }])) }
      : {};
    if (registry.allReady()) return { status: "ok", ...fallback };
    const states = Object.fromEntries(registry.list().map((w) => [w.id, w.state]));
    const has = (state: WorkerState) => Object.values(states).includes(state);
    const [status, code, message] = has("restarting")
      ? ["degraded", "worker_restarting", "A model worker stopped unexpectedly and is restarting"]
      : has("loading")
        ? ["loading", "model_loading", "Model is loading"]
        : ["unavailable", "model_unavailable", "Model is unavailable"];
    const e = new ApiError(503, "service_unavailable_error", message, { code });
    return reply.code(503).header("retry-after", "2").send({ ...e.toBody(), status, models: states, ...fallback });
  };
  app.get("/health", handler);
  app.get("/v1/health", handler);
};
