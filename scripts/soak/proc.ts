/** What the soak reads from /proc: the server's memory, leftover processes, and machine contention. */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { processTree } from "../bench/servers.js";

function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited between listing and reading
  }
}

export interface TreeRss {
  /** The HTTP process itself. */
  server: number;
  /** Its descendants: the model worker. */
  worker: number;
}

/** RSS of `root` and, summed, of its descendants: a leak shows in one side or the other. */
export function treeRss(root: number): TreeRss {
  const [, ...descendants] = processTree(root);
  return { server: rssBytes(root), worker: descendants.reduce((sum, pid) => sum + rssBytes(pid), 0) };
}

/**
 * Live processes of process group `pgid` (zombies excluded: they hold no memory and only wait
 * for a reaper). The server runs in its own group, so after it exits this must be empty; a
 * worker still here was orphaned by the shutdown.
 */
export function groupMembers(pgid: number): Array<{ pid: number; command: string }> {
  const out: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // comm may contain spaces and parentheses: the fixed fields start after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) !== pgid || state === "Z") continue;
      out.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim() });
    } catch {
      // exited while we looked
    }
  }
  return out;
}

/** Load average and CPU pressure: the soak shares its cores, and contended numbers must say so. */
export function machineLoad(): string {
  const [l1, l5] = os.loadavg().map((l) => l.toFixed(2));
  let pressure = "";
  try {
    // Share of time at least one runnable task waited for a CPU.
    const m = /^some avg10=([\d.]+) avg60=([\d.]+)/m.exec(readFileSync("/proc/pressure/cpu", "utf8"));
    if (m) pressure = `, CPU pressure ${m[1]}% (10 s) ${m[2]}% (60 s)`;
  } catch {
    // no PSI on this kernel
  }
  return `${os.cpus().length} CPUs, load ${l1} (1 min) ${l5} (5 min)${pressure}`;
}
