/**
 * Starting and stopping the servers under test, and measuring the memory of each one's process
 * tree from /proc while it runs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

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

/** The pids of `root` and all its descendants, from /proc/<pid>/stat (field 4 is the parent). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // comm may contain spaces and parentheses: fields after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(rest[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process exited while we looked
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

function statusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Samples the summed RSS of a process tree every `intervalMs`, and keeps each process's own
 * peak (VmHWM, tracked by the kernel between samples). `peakBytes` is the highest sampled sum;
 * `hwmSumBytes` sums per-process peaks, an upper bound that cannot miss a short spike.
 */
export class RssSampler {
  peakBytes = 0;
  private readonly hwm = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly root: number, private readonly intervalMs = 200) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  sample(): void {
    let sum = 0;
    for (const pid of processTree(this.root)) {
      sum += statusKb(pid, "VmRSS") * 1024;
      const hwm = statusKb(pid, "VmHWM") * 1024;
      if (hwm > (this.hwm.get(pid) ?? 0)) this.hwm.set(pid, hwm);
    }
    if (sum > this.peakBytes) this.peakBytes = sum;
  }

  get hwmSumBytes(): number {
    let sum = 0;
    for (const v of this.hwm.values()) sum += v;
    return sum;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
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

/** Kills every server still running when the bench is interrupted. */
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
