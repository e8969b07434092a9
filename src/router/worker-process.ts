/**
 * Forking a model worker, and one forked before the server's own modules load: the CLI forks it
 * once the configuration is read, so the worker's start (Node, node-llama-cpp's modules) runs
 * while the main process loads the rest of its modules, instead of after them. The first worker
 * started with the same arguments takes it; any other start forks its own.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const WORKER_ENTRY = new URL("../worker/main" + (import.meta.url.endsWith(".ts") ? ".ts" : ".js"), import.meta.url);

/** Node's arguments for a worker: tsx's loader when running from TypeScript, the V8 heap limit (0 = Node's default). */
export function workerExecArgv(heapMB: number): string[] {
  return [...(WORKER_ENTRY.pathname.endsWith(".ts") ? ["--import", "tsx"] : []), ...(heapMB > 0 ? [`--max-old-space-size=${heapMB}`] : [])];
}

function forkWorker(execArgv: string[]): ChildProcess {
  return fork(fileURLToPath(WORKER_ENTRY), [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
}

let spare: { child: ChildProcess; execArgv: string[] } | null = null;

/**
 * Forks a worker now for the first `startWorker` with the same arguments to take. It waits for
 * its "init" message; it exits when this process goes away without sending one (the worker exits
 * on disconnect).
 */
export function preforkWorker(execArgv: string[]): void {
  if (spare) return;
  const child = forkWorker(execArgv);
  child.on("error", () => {});
  spare = { child, execArgv };
}

/**
 * A worker process with these arguments: the preforked one when it matches and is alive
 * (`preforked: true`), else a new fork. A preforked worker that does not match is killed.
 */
export function startWorker(execArgv: string[]): { child: ChildProcess; preforked: boolean } {
  const taken = spare;
  spare = null;
  if (taken) {
    const alive = taken.child.connected && taken.child.exitCode === null && taken.child.signalCode === null;
    if (alive && taken.execArgv.join("\0") === execArgv.join("\0")) return { child: taken.child, preforked: true };
    taken.child.kill("SIGKILL");
  }
  return { child: forkWorker(execArgv), preforked: false };
}
