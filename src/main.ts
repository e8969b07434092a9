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
import { createMetrics, initModelSeries } from "./metrics/definitions.js";
import type { ModelInfo } from "./engine/types.js";

export interface Running {
  app: FastifyInstance;
  registry: ModelRegistry;
  stop(): Promise<void>;
}

export async function main(overrides: ConfigOverrides): Promise<Running> {
  const config = loadConfig(overrides);
  const running = await start(config, createLogger(config.log), (code, message) => {
    process.stderr.write(`edgellm: ${message}\n`);
    process.exit(code);
  });
  // `once`: a second Ctrl+C takes Node's default action and ends the process at once.
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      running.stop().then(
        () => process.exit(0),
        (err: Error) => {
          process.stderr.write(`edgellm: shutdown failed: ${err.message}\n`);
          process.exit(1);
        },
      );
    });
  }
  return running;
}

/**
 * Starts serving `config`. `onFatal` runs with a one-line reason when the model cannot be
 * loaded (the CLI prints it and exits non-zero; tests observe it).
 */
export async function start(config: Config, logger: Logger, onFatal: (code: number, message: string) => void): Promise<Running> {
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
  const worker = new ModelWorker(
    id,
    { modelPath: model.path, modelId: id, model: config.model, generation: config.generation, limits: config.limits },
    logger,
    { requestTimeoutMs: config.limits.requestTimeoutMs },
  );
  registry.add(worker);

  const metrics = createMetrics();
  worker.on("ready", (info: ModelInfo) => {
    initModelSeries(metrics, id);
    metrics.modelLoad.observe({ model: id }, info.loadMs / 1000);
  });
  worker.on("restart", () => metrics.workerRestarts.inc({ model: id }));
  // The worker process starts first: its start-up and the model load take most of a cold start,
  // and they overlap with building the server here. Until the handlers below are attached, a
  // failed load is held by `loading` (the catch only keeps it from counting as unhandled).
  const loading = worker.start();
  loading.catch(() => {});
  let app: FastifyInstance;
  let address: string;
  try {
    app = await buildServer({ config, logger, registry, metrics });
    // Listen while the model loads so /health can answer 503 until it is ready.
    address = await app.listen({ host: config.server.host, port: config.server.port });
  } catch (err) {
    await registry.stop();
    throw err;
  }
  logger.info({ address, model: id }, "listening; loading model");

  // Drain: health and new requests answer 503 while accepted ones finish (up to the grace
  // period); then the workers stop, ending whatever is left with a shutting_down error.
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info({ graceMs: config.server.shutdownGraceMs }, "shutting down: draining requests in flight");
      if (!(await app.drain(config.server.shutdownGraceMs))) logger.warn("grace period over; ending the requests still in flight");
      await registry.stop();
      await closeServer(app);
      logger.info("stopped");
    })());

  loading.then(
    (info) => logger.info({ model: id, loadMs: info.loadMs, contextSize: info.contextSize, sequences: info.sequences }, "model ready"),
    (err: Error) => {
      // A shutdown during the load ends it on purpose.
      if (stopping) return;
      const message = `cannot load model ${model.path}: ${err.message}`.replace(/\s*\n\s*/g, "; ");
      logger.fatal({ model: model.path }, message);
      void stop().finally(() => onFatal(1, message));
    },
  );
  return { app, registry, stop };
}

/** Closes the listener; connections still open shortly after their last response are dropped. */
async function closeServer(app: FastifyInstance): Promise<void> {
  const force = setTimeout(() => app.server.closeAllConnections(), 2000);
  await app.close();
  clearTimeout(force);
}
