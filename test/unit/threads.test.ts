/**
 * Decode threads: 0 picks the cores the process may use (affinity bounded by a cgroup CPU
 * quota, v2 or v1, the tightest along the cgroup's ancestry); more threads than cores are kept
 * with a warning. The cgroup files are given as a map.
 */
import { describe, it, expect } from "vitest";
import { cgroupCpuLimit, decodeThreads, usableCores } from "../../src/engine/threads.js";

const files = (entries: Record<string, string>) => (path: string) => entries[path];

describe("cgroupCpuLimit", () => {
  it("reads cgroup v2 cpu.max of the process's cgroup, rounding a fraction up", () => {
    const read = files({ "/proc/self/cgroup": "0::/docker/abc\n", "/sys/fs/cgroup/docker/abc/cpu.max": "150000 100000\n" });
    expect(cgroupCpuLimit(read)).toBe(2);
  });

  it("takes the tightest quota along the ancestry; 'max' is no quota", () => {
    const read = files({
      "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
      "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n",
      "/sys/fs/cgroup/kubepods/pod1/cpu.max": "100000 100000\n",
      "/sys/fs/cgroup/kubepods/cpu.max": "400000 100000\n",
    });
    expect(cgroupCpuLimit(read)).toBe(1);
  });

  it("reads cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us; -1 is no quota", () => {
    const v1 = (quota: string) =>
      files({
        "/proc/self/cgroup": "4:memory:/x\n2:cpu,cpuacct:/x\n0::/\n",
        "/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us": quota,
        "/sys/fs/cgroup/cpu/x/cpu.cfs_period_us": "100000\n",
      });
    expect(cgroupCpuLimit(v1("300000\n"))).toBe(3);
    expect(cgroupCpuLimit(v1("-1\n"))).toBeUndefined();
  });

  it("no cgroup files: no limit", () => {
    expect(cgroupCpuLimit(files({}))).toBeUndefined();
  });
});

describe("usableCores", () => {
  it("is the affinity mask bounded by the quota", () => {
    const limited = files({ "/proc/self/cgroup": "0::/c\n", "/sys/fs/cgroup/c/cpu.max": "100000 100000" });
    expect(usableCores(8, limited)).toBe(1);
    expect(usableCores(2, files({}))).toBe(2);
    const generous = files({ "/proc/self/cgroup": "0::/c\n", "/sys/fs/cgroup/c/cpu.max": "1600000 100000" });
    expect(usableCores(2, generous)).toBe(2);
  });
});

describe("decodeThreads", () => {
  it("0 picks the cores; up to the cores is taken as given, without a warning", () => {
    expect(decodeThreads(0, 2)).toEqual({ threads: 2 });
    expect(decodeThreads(1, 2)).toEqual({ threads: 1 });
    expect(decodeThreads(2, 2)).toEqual({ threads: 2 });
  });

  it("more threads than cores: kept, with a warning naming both and the fix", () => {
    const { threads, warning } = decodeThreads(4, 2);
    expect(threads).toBe(4);
    expect(warning).toBe(
      "model.threads is 4 but this process may use 2 cores: ggml's threads wait for each other at every step, so a thread " +
        "without a core stalls the rest and decoding slows down; set model.threads to 2 or fewer (0 picks 2)",
    );
  });
});
