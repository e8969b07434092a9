/**
 * Starting and stopping the servers under test (edgellm, llama-server), each in its own process
 * group, with the memory of its process tree sampled while it runs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { RssSampler } from "./proc.js";
import { relativeToRoot, ROOT } from "./tool.js";

export interface ServerSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go. */
  logFile: string;
  port: number;
}

/** What both servers get in a side-by-side run (`npm run bench`, `npm run bench:token-cpu`). */
export interface SideBySide {
  model: string;
  /** The model id both answer to. */
  alias: string;
  slots: number;
  /** Tokens per slot. */
  ctxSize: number;
  threads: number;
  kvPool: "unified" | "per-sequence";
}

/** edgellm as `npm start` runs it, on llama-server's KV cells; `extraSet` are more `--set key=value`. */
export function edgellmSpec(run: SideBySide, port: number, logFile: string, extraSet: readonly string[] = [], name = "edgellm"): ServerSpec {
  const args = [
    // What `npm start` runs: dist/ brought up to date with src/, then the server from it.
    "scripts/start.mjs",
    "--model", run.model, "--alias", run.alias, "--port", String(port),
    "--parallel", String(run.slots), "--ctx-size", String(run.ctxSize), "--threads", String(run.threads),
    "--log-level", "warn",
    "--set", `model.kvPool=${run.kvPool}`,
    // The same KV cells as llama-server's -c slots x ctx-size (edgellm's default unified pool is one context).
    "--set", `model.kvPoolTokens=${run.slots * run.ctxSize}`,
    ...extraSet.flatMap((kv) => ["--set", kv]),
  ];
  return { name, command: process.execPath, args, cwd: ROOT, logFile, port };
}

/** llama.cpp's llama-server (`bin`) with continuous batching and the same slots, context, threads and pool; `flashAttn` is its -fa. */
export function llamaServerSpec(run: SideBySide, bin: string, port: number, logFile: string, flashAttn: string, extraArgs: readonly string[] = []): ServerSpec {
  const args = [
    "-m", run.model, "--alias", run.alias, "--host", "127.0.0.1", "--port", String(port),
    "-t", String(run.threads), "-tb", String(run.threads),
    "-np", String(run.slots), "-c", String(run.slots * run.ctxSize),
    "-cb", "-fa", flashAttn, run.kvPool === "unified" ? "--kv-unified" : "--no-kv-unified",
    ...extraArgs,
  ];
  return { name: "llama-server", command: bin, args, cwd: ROOT, logFile, port };
}

export interface RunningServer {
  spec: ServerSpec;
  baseURL: string;
  child: ChildProcess;
  loadMs: number;
  rss: RssSampler;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`not ready after ${timeoutMs} ms`);
}

/** Starts a server in its own process group and waits until GET /health answers 200. */
export async function startServer(spec: ServerSpec, timeoutMs = 300_000): Promise<RunningServer> {
  const log = createWriteStream(spec.logFile);
  const started = performance.now();
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const rss = new RssSampler(child.pid!);
  rss.start();
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    rss.sample();
    rss.stop();
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
        await exited;
      }
    }
    // A worker may outlive its parent for a moment: make sure the whole group is gone.
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // nothing left
    }
    log.end();
  };
  const baseURL = `http://127.0.0.1:${spec.port}`;
  try {
    await waitHealthy(`${baseURL}/health`, child, timeoutMs);
  } catch (err) {
    await stop();
    throw new Error(`${spec.name} ${(err as Error).message}; see ${spec.logFile}`);
  }
  return { spec, baseURL, child, loadMs: performance.now() - started, rss, stop };
}

/** Kills every server still running when the tool is interrupted or exits. */
export function stopAllOnExit(servers: Set<RunningServer>): void {
  const killAll = () => {
    for (const s of servers) {
      try {
        process.kill(-s.child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** The command that starts `spec`, as one line for reports (paths inside the repository relative to it). */
export function commandLine(spec: Pick<ServerSpec, "command" | "args" | "env">): string {
  const nodeOptions = spec.env?.NODE_OPTIONS ? `NODE_OPTIONS="${spec.env.NODE_OPTIONS}" ` : "";
  return nodeOptions + [spec.command === process.execPath ? "node" : relativeToRoot(spec.command), ...spec.args.map(relativeToRoot)].join(" ");
}
