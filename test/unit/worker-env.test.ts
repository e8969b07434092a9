/** The model worker's environment: glibc's huge-page tunable added at fork (model.hugePages). */
import { describe, it, expect } from "vitest";
import { workerEnv, workerLaunch } from "../../src/router/worker-process.js";

describe("workerEnv", () => {
  it("adds glibc.malloc.hugetlb=1 when huge pages are on", () => {
    expect(workerEnv({ PATH: "/bin" }, true)).toEqual({ PATH: "/bin", GLIBC_TUNABLES: "glibc.malloc.hugetlb=1" });
  });

  it("appends it to the operator's other tunables", () => {
    expect(workerEnv({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }, true).GLIBC_TUNABLES).toBe("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  });

  it("keeps a hugetlb value the operator set", () => {
    const env = { GLIBC_TUNABLES: "glibc.malloc.hugetlb=0:glibc.malloc.arena_max=2" };
    expect(workerEnv(env, true)).toBe(env);
  });

  it("leaves the environment as it is when huge pages are off", () => {
    const env = { PATH: "/bin", GLIBC_TUNABLES: "glibc.malloc.arena_max=2" };
    expect(workerEnv(env, false)).toBe(env);
  });

  it("does not take another tunable that starts alike for it", () => {
    expect(workerEnv({ GLIBC_TUNABLES: "glibc.malloc.hugetlbx=0" }, true).GLIBC_TUNABLES).toBe("glibc.malloc.hugetlbx=0:glibc.malloc.hugetlb=1");
  });
});

describe("workerLaunch", () => {
  it("carries the heap limit as a Node flag and huge pages apart", () => {
    const launch = workerLaunch(256, false);
    expect(launch.execArgv).toContain("--max-old-space-size=256");
    expect(launch.hugePages).toBe(false);
    expect(workerLaunch(0, true).execArgv.some((a) => a.startsWith("--max-old-space-size"))).toBe(false);
  });
});
