/** Child-process entry: hosts one Engine (node-llama-cpp is owned by this process's main thread). */
import { Engine } from "../engine/engine.js";
import type { MainToWorker, WorkerToMain } from "./protocol.js";

const send = (msg: WorkerToMain) => {
  if (process.connected) process.send!(msg);
};

let engine: Engine | null = null;
let shuttingDown = false;

/** llama.cpp's first error line while loading: it says what is wrong with a file, its exception only that loading failed. */
let firstLoadError: string | undefined;

const log = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => {
  if (level === "error" && !engine) firstLoadError ??= msg;
  send({ type: "log", level, msg, fields });
};

async function handle(msg: MainToWorker): Promise<void> {
  switch (msg.type) {
    case "init":
      try {
        engine = await Engine.load(msg.engine, log, msg.adapters);
        send({ type: "ready", info: engine.info });
      } catch (err) {
        // llama.cpp's log lines cross from its thread asynchronously and can trail the rejection.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const reason = err instanceof Error ? err.message : String(err);
        send({ type: "load_failed", message: firstLoadError ? `${reason} (${firstLoadError})` : reason });
        process.exitCode = 1;
        process.disconnect();
      }
      return;
    case "generate":
      if (!engine) throw new Error("generate before ready");
      engine.submit(msg.id, msg.request, (event) => send({ type: "event", id: msg.id, event }));
      return;
    case "cancel":
      engine?.cancel(msg.id);
      return;
    case "status":
      if (engine) send({ type: "status", id: msg.id, status: engine.status(msg.drainRounds) });
      return;
    case "text_op":
      if (!engine) return;
      send({ type: "text_op", id: msg.id, ...engine.textOp(msg.op) });
      return;
    case "embed":
      if (!engine) return;
      send({ type: "embeddings", id: msg.id, ...(await engine.embed(msg.id, msg.request)) });
      return;
    case "adapter_load":
      if (!engine) return;
      send({ type: "adapter_load", id: msg.id, ...(await engine.loadAdapter(msg.path)) });
      return;
    case "adapter_unload":
      await engine?.unloadAdapter(msg.path);
      return;
    case "shutdown":
      await shutdown();
      return;
  }
}

async function shutdown(): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  await engine?.dispose();
  process.disconnect?.();
  process.exit(0);
}

process.on("message", (msg: MainToWorker) => {
  handle(msg).catch((err) => log("error", "worker message failed", { type: msg.type, err: String(err) }));
});
// The server decides when its worker stops: Ctrl+C in a terminal signals the whole process group,
// and a worker dying with it would cut off the requests the server is still draining.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => {});
// The parent going away (crash, kill -9) must not leave an orphan holding the model in memory.
process.on("disconnect", () => {
  if (!shuttingDown) process.exit(0);
});
