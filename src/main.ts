/** Start-up and shutdown: config, logger, served models, HTTP server, signals. No request logic here. */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Config } from "./config/schema.js";
import { loadConfig, type ConfigOverrides } from "./config/load.js";
import { createLogger } from "./logger.js";
import { resolveModel } from "./models/resolve.js";
import { ModelRegistry } from "./router/registry.js";
import { modelSpecs } from "./router/catalog.js";
import { estimateCacheDir } from "./engine/estimate-cache.js";
import { PressureMonitor, type PressureSource } from "./models/pressure.js";
import { QuantizationFallback } from "./router/fallback.js";
import { createMetrics, initModelSeries } from "./metrics/definitions.js";
import type { ModelInfo } from "./engine/types.js";

export interface Running {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** Applies a re-read configuration's models: new ones are added, changed ones reloaded blue-green, removed ones unloaded. */
  reloadModels(next: Config): Promise<void>;
  stop(): Promise<void>;
}

export async function main(overrides: ConfigOverrides): Promise<Running> {
  const config = loadConfig(overrides);
  const logger = createLogger(config.log);
  const running = await start(config, logger, (code, message) => {
    process.stderr.write(`edgellm: ${message}\n`);
    process.exit(code);
  });
  // A second Ctrl+C takes Node's default action and ends the process at once. The handler stays
  // registered while the server drains: signal-exit (loaded with node-llama-cpp, which the main
  // process imports only when a memory budget needs an estimate) re-raises a signal that finds
  // no listener but its own, which would end the process before the drain.
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    let received = false;
    process.on(signal, () => {
      if (received) {
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
        return;
      }
      received = true;
      running.stop().then(
        () => process.exit(0),
        (err: Error) => {
          process.stderr.write(`edgellm: shutdown failed: ${err.message}\n`);
          process.exit(1);
        },
      );
    });
  }
  // SIGHUP re-reads the configuration (files and environment as at start) and applies its models.
  process.on("SIGHUP", () => {
    logger.info("SIGHUP: reloading the model configuration");
    let next: Config;
    try {
      next = loadConfig(overrides);
    } catch (err) {
      logger.error({ err: (err as Error).message }, "SIGHUP: the configuration is invalid; keeping the current one");
      return;
    }
    running.reloadModels(next).then(
      () => logger.info("SIGHUP: model configuration applied"),
      (err: Error) => logger.error({ err: err.message }, "SIGHUP: reload failed; the models that were serving keep serving"),
    );
  });
  return running;
}

/**
 * Starts serving `config`. `onFatal` runs with a one-line reason when the model cannot be
 * loaded (the CLI prints it and exits non-zero; tests observe it).
 */
export async function start(
  config: Config,
  logger: Logger,
  onFatal: (code: number, message: string) => void,
  /** Tests give the memory-pressure watch a fake source. */
  extras: { pressureSource?: PressureSource } = {},
): Promise<Running> {
  const model = await resolveModel(config.model.source, config.model.dir);
  if (model.synthetic) {
    logger.warn(
      { model: model.path },
      "SERVING A SYNTHESIZED MODEL WITH RANDOM WEIGHTS: its output is gibberish. For a real model run " +
        "`npm run pull -- qwen3-0.6b` (needs network) and start with --model <file.gguf>",
    );
  }
  const id = config.model.alias || model.id;
  const metrics = createMetrics();
  // Estimating takes seconds of CPU (node-llama-cpp simulates the allocation): once per file and
  // settings, and kept on disk across starts. node-llama-cpp is imported only when a memory budget
  // needs an estimate: loading it would delay every start, and the worker's fork with it.
  const estimates = new Map<string, Promise<number>>();
  const estimate = async (path: string, settings: Config["model"]) => {
    const [{ estimateMemory }, { unifiedKvExpected }] = await Promise.all([import("./engine/memory-budget.js"), import("./engine/backend.js")]);
    const e = await estimateMemory(undefined, path, settings, await unifiedKvExpected(settings.kvPool), { dir: estimateCacheDir(config), build: "main process" });
    return e.weightsBytes + e.contextBytes;
  };
  const registry = new ModelRegistry({
    config,
    logger,
    estimateBytes: (path, settings) => {
      const key = JSON.stringify([path, settings]);
      let bytes = estimates.get(key);
      if (!bytes) {
        bytes = estimate(path, settings);
        estimates.set(key, bytes);
      }
      return bytes;
    },
    onWorker: (served, worker) => {
      worker.on("ready", (info: ModelInfo) => {
        initModelSeries(metrics, served.id);
        metrics.modelLoad.observe({ model: served.id }, info.loadMs / 1000);
      });
      worker.on("restart", () => metrics.workerRestarts.inc({ model: served.id }));
    },
  });
  for (const spec of modelSpecs(config, { id, path: model.path })) registry.define(spec);
  registry.defaultId = id;
  const served = registry.get(id)!;
  // The default model's worker starts first: its start-up and the model load take most of a cold
  // start, and they overlap with building the server here. Until the handlers below are attached,
  // a failed load is held by `loading` (the catch only keeps it from counting as unhandled).
  const loading = served.load();
  loading.catch(() => {});
  let app: FastifyInstance;
  let address: string;
  try {
    // Imported here, not at the top: the HTTP server's modules (Fastify, the routes, their
    // schemas) load while the worker starts instead of before it is forked.
    const { buildServer } = await import("./server/app.js");
    app = await buildServer({ config, logger, registry, metrics });
    // Listen while the model loads so /health can answer 503 until it is ready.
    address = await app.listen({ host: config.server.host, port: config.server.port });
  } catch (err) {
    await registry.stop();
    throw err;
  }
  // uptimeMs: since this process started (a cold start's timeline: listening, then model ready).
  logger.info({ address, model: id, models: registry.list().map((m) => m.id), uptimeMs: Math.round(performance.now()) }, "listening; loading model");

  // Drain: health and new requests answer 503 while accepted ones finish (up to the grace
  // period); then the workers stop, ending whatever is left with a shutting_down error.
  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info({ graceMs: config.server.shutdownGraceMs }, "shutting down: draining requests in flight");
      if (!(await app.drain(config.server.shutdownGraceMs))) logger.warn("grace period over; ending the requests still in flight");
      fallback?.stop();
      await registry.stop();
      await closeServer(app);
      logger.info("stopped");
    })());

  // The quantization fallback watches memory only when some model has a smaller variant to go to.
  const fallback = registry.list().some((m) => m.spec.sources.length > 1)
    ? new QuantizationFallback(
        registry,
        new PressureMonitor({
          ...config.pressure,
          source: extras.pressureSource,
          budgetBytes: config.model.memoryBudgetMB > 0 ? config.model.memoryBudgetMB * 2 ** 20 : undefined,
        }),
        logger,
        (swap) => metrics.fallbackSwaps.inc({ model: swap.model, direction: swap.direction }),
      )
    : null;
  fallback?.start();

  loading.then(
    (worker) =>
      logger.info(
        { model: id, loadMs: worker.info?.loadMs, contextSize: worker.info?.contextSize, sequences: worker.info?.sequences, uptimeMs: Math.round(performance.now()) },
        "model ready",
      ),
    (err: Error) => {
      // A shutdown during the load ends it on purpose.
      if (stopping) return;
      const message = `cannot load model ${model.path}: ${served.lastError ?? err.message}`.replace(/\s*\n\s*/g, "; ");
      logger.fatal({ model: model.path }, message);
      void stop().finally(() => onFatal(1, message));
    },
  );

  const reloadModels = async (next: Config) => {
    const nextModel = await resolveModel(next.model.source, next.model.dir);
    const nextId = next.model.alias || nextModel.id;
    const specs = modelSpecs(next, { id: nextId, path: nextModel.path });
    registry.defaultId = nextId;
    for (const old of registry.list()) if (!specs.some((s) => s.id === old.id)) await registry.remove(old.id);
    await Promise.all(
      specs.map(async (spec) => {
        const current = registry.get(spec.id);
        if (!current) return void registry.define(spec);
        if (JSON.stringify(current.spec) !== JSON.stringify(spec)) await current.reload("configuration reloaded", spec, 0);
      }),
    );
    await registry.get(nextId)!.load();
  };
  return { app, registry, reloadModels, stop };
}

/** Closes the listener; connections still open shortly after their last response are dropped. */
async function closeServer(app: FastifyInstance): Promise<void> {
  const force = setTimeout(() => app.server.closeAllConnections(), 2000);
  await app.close();
  clearTimeout(force);
}
