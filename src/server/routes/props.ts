import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import type { SamplingDefaults } from "../../config/schema.js";

const wireSampling = (s: SamplingDefaults) => ({ temperature: s.temperature, top_p: s.topP, top_k: s.topK, min_p: s.minP });

/**
 * The defaults a request gets when it leaves a field out, after llama-server's `GET /props`
 * (`default_generation_settings.params`); the playground fills its settings panel from it.
 * Sampling defaults depend on the thinking mode, so both sets are given.
 */
export const propsRoutes: FastifyPluginAsync<ServerDeps> = async (app, { config, registry }) => {
  const g = config.generation;
  app.get("/props", async () => {
    const model = registry.list()[0];
    return {
      default_generation_settings: {
        n_ctx: model?.info?.contextSize ?? config.model.contextSize,
        params: {
          ...wireSampling(g.enableThinking ? g.samplingThinking : g.samplingNonThinking),
          max_tokens: g.defaultMaxTokens,
          enable_thinking: g.enableThinking,
          thinking_budget: g.thinkingBudget,
          seed: null,
        },
      },
      sampling: { thinking: wireSampling(g.samplingThinking), non_thinking: wireSampling(g.samplingNonThinking) },
      max_completion_tokens: config.limits.maxCompletionTokens,
      total_slots: config.model.sequences,
      models: registry.list().map((w) => w.id),
    };
  });
};
