import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";

/**
 * Engine introspection, like llama-server's /slots: per model, each slot's phase and cached
 * tokens, and the queue. `?fail_on_no_slot=1` answers 503 when no slot is idle, so a load
 * balancer can ask "can you take one more?".
 */
export const engineRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.get<{ Querystring: { fail_on_no_slot?: string } }>("/v1/engine", async (req, reply) => {
    const models = await Promise.all(
      registry.list().map(async (w) => ({
        id: w.id,
        state: w.state,
        status: w.loadStatus,
        restarts: w.restarts,
        context_size: w.info?.contextSize ?? null,
        kv_pool: w.info?.kvPool ?? null,
        kv_pool_tokens: w.info?.kvPoolTokens ?? null,
        addon_build: w.info?.addonBuild ?? null,
        pooling: w.info?.pooling ?? null,
        inflight: w.inflightCount,
        ...(await w.status()),
      })),
    );
    const idle = models.some((m) => m.slots?.some((s) => s.phase === "idle"));
    if (["1", "true"].includes(req.query.fail_on_no_slot ?? "") && !idle) reply.code(503);
    return { object: "engine.status", models };
  });
};
