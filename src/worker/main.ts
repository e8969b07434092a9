/** Child-process entry: hosts one Engine (node-llama-cpp is owned by this process's main thread). */
import { Engine } from "../engine/engine.js";
import type { MainToWorker, WorkerToMain } from "./protocol.js";

const send = (msg: WorkerToMain) => {
  if (process.connected) process.send!(msg);
};

let engine: Engine | null = null;
let shuttingDown = false;

const log = (level: "debug" | "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) =>
  send({ type: "log", level, msg, fields });

async function handle(msg: MainToWorker): Promise<void> {
  switch (msg.type) {
    case "init":
      try {
        engine = await Engine.load(msg.init, log);
        send({ type: "ready", info: engine.info });
      } catch (err) {
        send({ type: "load_failed", message: err instanceof Error ? err.message : String(err) });
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
// The parent going away (crash, kill -9) must not leave an orphan holding the model in memory.
process.on("disconnect", () => {
  if (!shuttingDown) process.exit(0);
});
