/**
 * What the tools read from /proc: process trees and their memory, leftover processes of a
 * process group, and how busy the machine is.
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { parsePsi } from "../../src/models/pressure.js";

/** `/proc/<pid>/stat` fields after the command name (state, ppid, pgrp, …), or a thread's with `<pid>/task/<tid>`; undefined once gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces and parentheses: the fixed fields start after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

const pids = () => readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));

/** The pids of `root` and all its descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of pids()) {
    const fields = statFields(entry);
    if (!fields) continue;
    const ppid = Number(fields[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
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

/** CPU time (user + system, in clock ticks) of each thread of `pid`, by thread id; empty once the process is gone. */
export function threadTicks(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const fields = statFields(`${pid}/task/${tid}`);
    // utime and stime: fields 14 and 15 of stat, 12th and 13th after the command name.
    if (fields) out.set(Number(tid), Number(fields[11]) + Number(fields[12]));
  }
  return out;
}

/** A `kB` field of `/proc/<pid>/status` in bytes; 0 once the process is gone. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface TreeRss {
  /** The root process itself (the HTTP server). */
  server: number;
  /** Its descendants: the model worker. */
  worker: number;
}

/** RSS of `root` and, summed, of its descendants: a leak shows in one side or the other. */
export function treeRss(root: number): TreeRss {
  const [, ...descendants] = processTree(root);
  return { server: statusBytes(root, "VmRSS"), worker: descendants.reduce((sum, pid) => sum + statusBytes(pid, "VmRSS"), 0) };
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
      sum += statusBytes(pid, "VmRSS");
      const hwm = statusBytes(pid, "VmHWM");
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

/**
 * Live processes of process group `pgid` (zombies excluded: they hold no memory and only wait
 * for a reaper). A server started in its own group must leave it empty when it exits; a
 * worker still here was orphaned by the shutdown.
 */
export function groupMembers(pgid: number): Array<{ pid: number; command: string }> {
  const out: Array<{ pid: number; command: string }> = [];
  for (const entry of pids()) {
    const [state, , pgrp] = statFields(entry) ?? [];
    if (Number(pgrp) !== pgid || state === "Z") continue;
    try {
      out.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim() });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Share of time (percent, over 10 s and 60 s) at least one runnable task waited for a CPU; undefined without PSI. */
export function cpuPressure(): { avg10: number; avg60: number } | undefined {
  try {
    const { some } = parsePsi(readFileSync("/proc/pressure/cpu", "utf8"));
    return { avg10: some.avg10, avg60: some.avg60 };
  } catch {
    return undefined;
  }
}

/** Load average and CPU pressure: the tools share their cores, and contended numbers must say so. */
export function machineLoad(): string {
  const [l1, l5] = os.loadavg().map((l) => l.toFixed(2));
  const pressure = cpuPressure();
  const psi = pressure ? `, CPU pressure ${pressure.avg10.toFixed(2)}% (10 s) ${pressure.avg60.toFixed(2)}% (60 s)` : "";
  return `${os.cpus().length} CPUs, load ${l1} (1 min) ${l5} (5 min)${psi}`;
}
