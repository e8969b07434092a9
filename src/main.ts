/** Start-up and shutdown: config, logger, model worker, HTTP server, signals. No request logic here. */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "./config/schema.js";
import { loadConfig, type ConfigOverrides } from "./config/load.js";
import { createLogger } from "./logger.js";
import { resolveModel } from "./models/resolve.js";
import { ModelRegistry } from "./router/registry.js";
import { ModelWorker } from "./router/model-worker.js";
import { buildServer } from "./server/app.js";
import { createMetrics } from "./metrics/definitions.js";
import type { ModelInfo } from "./engine/types.js";

export interface Running {
  app: FastifyInstance;
  registry: ModelRegistry;
  stop(): Promise<void>;
}

export async function main(overrides: ConfigOverrides): Promise<Running> {
  const config = loadConfig(overrides);
  const running = await start(config, createLogger(config.log), (code) => process.exit(code));
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      void running.stop().then(() => process.exit(0));
    });
  }
  return running;
}

/**
 * Starts serving `config`. `onFatal` runs when the model cannot be loaded (the CLI exits
 * non-zero; tests observe it).
 */
export async function start(config: Config, logger: Logger, onFatal: (code: number) => void): Promise<Running> {
  const model = await resolveModel(config.model.source, config.model.dir);
  if (model.synthetic) {
    logger.warn(
      { model: model.path },
      "SERVING A SYNTHESIZED MODEL WITH RANDOM WEIGHTS: its output is gibberish. For a real model run " +
        "`npm run pull -- qwen3-0.6b` (needs network) and start with --model <file.gguf>",
    );
  }
  const id = config.model.alias || model.id;
  const registry = new ModelRegistry();
  const worker = new ModelWorker(id, { modelPath: model.path, modelId: id, model: config.model, generation: config.generation, logLevel: config.log.level }, logger);
  registry.add(worker);

  const metrics = createMetrics();
  worker.on("ready", (info: ModelInfo) => metrics.modelLoad.observe({ model: id }, info.loadMs / 1000));
  worker.on("restart", () => metrics.workerRestarts.inc({ model: id }));
  const app = await buildServer({ config, logger, registry, metrics });
  // Listen before the model loads so /health can answer 503 while it does.
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  logger.info({ address, model: id }, "listening; loading model");

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info("shutting down");
      await app.close();
      await registry.stop();
    })());

  worker.start().then(
    (info) => logger.info({ model: id, loadMs: info.loadMs, contextSize: info.contextSize, sequences: info.sequences }, "model ready"),
    (err: Error) => {
      logger.fatal({ model: model.path }, `cannot load model ${model.path}: ${err.message}`);
      void stop().finally(() => onFatal(1));
    },
  );
  return { app, registry, stop };
}
