/**
 * Forking a model worker, and one forked before the server's own modules load: the CLI forks it
 * once the configuration is read, so the worker's start (Node, node-llama-cpp's modules) runs
 * while the main process loads the rest of its modules, instead of after them. The first worker
 * started with the same launch settings takes it; any other start forks its own.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const WORKER_ENTRY = new URL("../worker/main" + (import.meta.url.endsWith(".ts") ? ".ts" : ".js"), import.meta.url);

/** How a worker process starts: Node's arguments and whether glibc asks for huge pages (model.hugePages). */
export interface WorkerLaunch {
  execArgv: string[];
  hugePages: boolean;
}

/** A worker's launch: tsx's loader when running from TypeScript, the V8 heap limit (0 = Node's default), huge pages. */
export function workerLaunch(heapMB: number, hugePages: boolean): WorkerLaunch {
  const execArgv = [...(WORKER_ENTRY.pathname.endsWith(".ts") ? ["--import", "tsx"] : []), ...(heapMB > 0 ? [`--max-old-space-size=${heapMB}`] : [])];
  return { execArgv, hugePages };
}

const HUGETLB = "glibc.malloc.hugetlb";

/**
 * The worker's environment: this process's, plus `glibc.malloc.hugetlb=1` in GLIBC_TUNABLES when
 * huge pages are on (glibc then madvises its mmap'd allocations MADV_HUGEPAGE; llama.cpp's CPU
 * buffers are such allocations). Tunables are read when a process starts, so this is set at fork.
 * A GLIBC_TUNABLES that already sets the tunable is the operator's choice and is kept.
 */
export function workerEnv(env: NodeJS.ProcessEnv, hugePages: boolean): NodeJS.ProcessEnv {
  const tunables = env.GLIBC_TUNABLES ?? "";
  if (!hugePages || tunables.split(":").some((t) => t.startsWith(`${HUGETLB}=`))) return env;
  return { ...env, GLIBC_TUNABLES: tunables ? `${tunables}:${HUGETLB}=1` : `${HUGETLB}=1` };
}

function forkWorker(launch: WorkerLaunch): ChildProcess {
  return fork(fileURLToPath(WORKER_ENTRY), [], {
    execArgv: launch.execArgv,
    env: workerEnv(process.env, launch.hugePages),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

const sameLaunch = (a: WorkerLaunch, b: WorkerLaunch) => a.hugePages === b.hugePages && a.execArgv.join("\0") === b.execArgv.join("\0");

let spare: { child: ChildProcess; launch: WorkerLaunch } | null = null;

/**
 * Forks a worker now for the first `startWorker` with the same launch to take. It waits for
 * its "init" message; it exits when this process goes away without sending one (the worker exits
 * on disconnect).
 */
export function preforkWorker(launch: WorkerLaunch): void {
  if (spare) return;
  const child = forkWorker(launch);
  child.on("error", () => {});
  spare = { child, launch };
}

/**
 * A worker process with this launch: the preforked one when it matches and is alive
 * (`preforked: true`), else a new fork. A preforked worker that does not match is killed.
 */
export function startWorker(launch: WorkerLaunch): { child: ChildProcess; preforked: boolean } {
  const taken = spare;
  spare = null;
  if (taken) {
    const alive = taken.child.connected && taken.child.exitCode === null && taken.child.signalCode === null;
    if (alive && sameLaunch(taken.launch, launch)) return { child: taken.child, preforked: true };
    taken.child.kill("SIGKILL");
  }
  return { child: forkWorker(launch), preforked: false };
}
