/**
 * Decode threads: `model.threads`, or at 0 the cores this process may use. Those are the CPUs
 * of its affinity mask (os.availableParallelism, which is what Node 20 reports) bounded by a
 * cgroup CPU quota (`docker run --cpus`, a Kubernetes CPU limit), which the affinity mask does
 * not show: a container limited to 1 CPU on an 8-core host would otherwise run 8 threads.
 *
 * More threads than cores is slow, not wrong: ggml's threads spin while they wait for each other
 * at every step, so a thread that loses its core stalls the others (README "Performance"). An
 * explicit setting is kept, with a warning naming the cores; llama-server keeps it too.
 */
import os from "node:os";
import { readFileSync } from "node:fs";

export type ReadFile = (path: string) => string | undefined;

const readOrUndefined: ReadFile = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** CPUs a quota of `quota` µs per `period` µs allows, rounded up; undefined for no quota. */
function quotaCpus(quota: number, period: number): number | undefined {
  return Number.isFinite(quota) && quota > 0 && Number.isFinite(period) && period > 0 ? Math.ceil(quota / period) : undefined;
}

/** `path` and its ancestors, up to the cgroup root ("/a/b" → "/a/b", "/a", ""). */
function ancestry(path: string): string[] {
  const parts = path.split("/").filter(Boolean);
  return parts.map((_, i) => `/${parts.slice(0, parts.length - i).join("/")}`).concat("");
}

/**
 * The CPU quota of this process's cgroup and its ancestors (the tightest), in whole CPUs:
 * cgroup v2 `cpu.max` ("150000 100000" = 2 CPUs, "max 100000" = none) or v1
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us`. Undefined when there is none.
 */
export function cgroupCpuLimit(read: ReadFile = readOrUndefined): number | undefined {
  const lines = (read("/proc/self/cgroup") ?? "").split("\n");
  const limits: number[] = [];
  const v2 = lines.find((l) => l.startsWith("0::"))?.slice(3);
  if (v2 !== undefined) {
    for (const dir of ancestry(v2)) {
      const [quota, period] = (read(`/sys/fs/cgroup${dir}/cpu.max`) ?? "").trim().split(/\s+/);
      const cpus = quota === "max" ? undefined : quotaCpus(Number(quota), Number(period));
      if (cpus !== undefined) limits.push(cpus);
    }
  }
  const v1 = lines.map((l) => l.split(":")).find((f) => f.length >= 3 && f[1]!.split(",").includes("cpu"))?.slice(2).join(":");
  if (v1 !== undefined) {
    for (const dir of ancestry(v1)) {
      const cpus = quotaCpus(Number(read(`/sys/fs/cgroup/cpu${dir}/cpu.cfs_quota_us`)), Number(read(`/sys/fs/cgroup/cpu${dir}/cpu.cfs_period_us`)));
      if (cpus !== undefined) limits.push(cpus);
    }
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** Cores this process may use: the affinity mask bounded by the cgroup CPU quota. */
export function usableCores(affinity = os.availableParallelism(), read: ReadFile = readOrUndefined): number {
  const limit = cgroupCpuLimit(read);
  return Math.max(1, limit === undefined ? affinity : Math.min(affinity, limit));
}

/** The threads a context gets for `model.threads` on `cores`, and a warning when they outnumber the cores. */
export function decodeThreads(configured: number, cores: number): { threads: number; warning?: string } {
  if (configured === 0) return { threads: cores };
  if (configured <= cores) return { threads: configured };
  return {
    threads: configured,
    warning:
      `model.threads is ${configured} but this process may use ${cores} core${cores === 1 ? "" : "s"}: ggml's threads wait for ` +
      `each other at every step, so a thread without a core stalls the rest and decoding slows down; ` +
      `set model.threads to ${cores} or fewer (0 picks ${cores})`,
  };
}
