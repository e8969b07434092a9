/** Starts the real server (Fastify + a real worker process) on a free port for end-to-end tests. */
import pino, { type Logger } from "pino";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { start, type Running } from "../../src/main.js";
import type { EngineStatus } from "../../src/engine/types.js";
import { waitFor } from "./stream.js";

export interface TestServer {
  url: string;
  baseURL: string;
  modelId: string;
  running: Running;
  stop(): Promise<void>;
}

/**
 * `logger` defaults to a silent one; pass a pino logger over a capture stream to read the logs.
 * Without a `server.dataDir`, the server stores into a temp folder of its own, removed when it
 * stops: servers of parallel test files must not share (and evict from) one store. Without a
 * `model.dir`, it scans an empty temp folder of its own: the repository's models/ holds whatever
 * other tests synthesized there, which would otherwise be listed as served models.
 */
export async function startTestServer(modelPath: string, set: Record<string, unknown> = {}, logger: Logger = pino({ level: "silent" })): Promise<TestServer> {
  const ownDataDir = "server.dataDir" in set ? null : mkdtempSync(join(tmpdir(), "edgellm-data-"));
  const ownModelDir = "model.dir" in set ? null : mkdtempSync(join(tmpdir(), "edgellm-models-"));
  const config = loadConfig(
    {
      set: {
        "model.source": modelPath,
        "server.port": 0,
        "model.contextSize": 1024,
        "model.sequences": 2,
        "model.threads": 1,
        "log.level": "silent",
        ...(ownDataDir && { "server.dataDir": ownDataDir }),
        ...(ownModelDir && { "model.dir": ownModelDir }),
        ...set,
      },
    },
    {},
  );
  let fatal: number | null = null;
  const running = await start(config, logger, (code) => (fatal = code));
  const worker = running.registry.list()[0]!;
  while (worker.state !== "ready") {
    if (fatal !== null || worker.state === "failed") throw new Error(`model failed to load: ${modelPath}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const address = running.app.server.address();
  if (!address || typeof address === "string") throw new Error("server has no TCP address");
  const url = `http://127.0.0.1:${address.port}`;
  const stop = async () => {
    await running.stop();
    if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    if (ownModelDir) rmSync(ownModelDir, { recursive: true, force: true });
  };
  return { url, baseURL: `${url}/v1`, modelId: worker.id, running, stop };
}

/** The served model's entry in GET /v1/engine. */
export type EngineModelStatus = EngineStatus & { state: string; inflight: number; kv_pool: string | null };

export async function engineModel(server: TestServer): Promise<EngineModelStatus> {
  const body = (await (await fetch(`${server.url}/v1/engine`)).json()) as { models: EngineModelStatus[] };
  return body.models[0]!;
}

/** Waits until every slot is idle and nothing is queued or in flight; `ready` also requires the worker ready. */
export async function engineIdle(server: TestServer, { ready = false } = {}): Promise<void> {
  await waitFor(
    () => engineModel(server),
    (m) => (!ready || m.state === "ready") && m.queued === 0 && m.inflight === 0 && m.slots.every((s) => s.phase === "idle"),
    10_000,
  );
}
