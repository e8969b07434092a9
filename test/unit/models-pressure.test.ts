import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  cgroupV2Path,
  defaultPressureSource,
  parseMemoryEvents,
  parseMeminfo,
  parsePsi,
  PressureMonitor,
  type PressureReading,
  type PressureSource,
} from "../../src/models/pressure.js";

/** A source whose answer the test sets; counts reads. */
class FakeSource implements PressureSource {
  pressured = false;
  reads = 0;
  fail = false;
  async read(): Promise<PressureReading> {
    this.reads++;
    if (this.fail) throw new Error("read failed");
    return { at: Date.now(), source: "available", pressured: this.pressured, reason: this.pressured ? "fake: pressured" : "fake: calm" };
  }
}

function monitorWith(source: FakeSource) {
  const monitor = new PressureMonitor({ source, intervalMs: 1_000, sustainMs: 5_000, reliefMs: 10_000 });
  const events: string[] = [];
  monitor.on("pressure", (r: PressureReading) => events.push(`pressure@${r.at}`));
  monitor.on("relief", (r: PressureReading) => events.push(`relief@${r.at}`));
  return { monitor, events };
}

describe("PressureMonitor hysteresis", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("emits pressure only once pressure has lasted sustainMs, and once", async () => {
    const source = new FakeSource();
    const { monitor, events } = monitorWith(source);
    source.pressured = true;
    monitor.start();
    await vi.advanceTimersByTimeAsync(4_999);
    expect(events).toEqual([]);
    expect(monitor.underPressure).toBe(false);
    expect(monitor.last?.pressured).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["pressure@5000"]);
    expect(monitor.underPressure).toBe(true);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(events).toEqual(["pressure@5000"]);
    monitor.stop();
  });

  it("emits relief once pressure has been gone for reliefMs", async () => {
    const source = new FakeSource();
    const { monitor, events } = monitorWith(source);
    source.pressured = true;
    monitor.start();
    await vi.advanceTimersByTimeAsync(6_000);
    expect(events).toEqual(["pressure@5000"]);
    source.pressured = false; // first calm reading at t=7000
    await vi.advanceTimersByTimeAsync(10_999);
    expect(monitor.underPressure).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(events).toEqual(["pressure@5000", "relief@17000"]);
    expect(monitor.underPressure).toBe(false);
    expect(monitor.last?.reason).toBe("fake: calm");
    monitor.stop();
  });

  it("does not fire while the readings flap, on the way in or out", async () => {
    const source = new FakeSource();
    const { monitor, events } = monitorWith(source);
    const flap = async (ms: number) => {
      for (let t = 0; t < ms; t += 2_000) {
        source.pressured = !source.pressured;
        await vi.advanceTimersByTimeAsync(2_000);
      }
    };
    monitor.start();
    await flap(60_000); // runs of 2 s never reach the 5 s sustain
    expect(events).toEqual([]);
    source.pressured = true;
    await vi.advanceTimersByTimeAsync(6_000);
    expect(events).toHaveLength(1);
    await flap(60_000); // calm runs of 2 s never reach the 10 s relief
    expect(events).toHaveLength(1);
    expect(monitor.underPressure).toBe(true);
    monitor.stop();
  });

  it("stop() stops the readings and the events", async () => {
    const source = new FakeSource();
    const { monitor, events } = monitorWith(source);
    source.pressured = true;
    monitor.start();
    await vi.advanceTimersByTimeAsync(3_000);
    const reads = source.reads;
    expect(reads).toBe(4);
    monitor.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.reads).toBe(reads);
    expect(events).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("drops a read that was in flight when stop() was called", async () => {
    let resolve!: (r: PressureReading) => void;
    const slow: PressureSource = { read: () => new Promise((r) => (resolve = r)) };
    const monitor = new PressureMonitor({ source: slow, intervalMs: 1_000, sustainMs: 0, reliefMs: 0 });
    const fired = vi.fn();
    monitor.on("pressure", fired);
    monitor.start();
    monitor.stop();
    resolve({ at: Date.now(), source: "psi", pressured: true, reason: "late" });
    await vi.advanceTimersByTimeAsync(5_000);
    expect(fired).not.toHaveBeenCalled();
    expect(monitor.last).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a failed read is reported as 'error' and changes nothing", async () => {
    const source = new FakeSource();
    const { monitor, events } = monitorWith(source);
    const errors: Error[] = [];
    monitor.on("error", (err: Error) => errors.push(err));
    source.pressured = true;
    monitor.start();
    await vi.advanceTimersByTimeAsync(2_000);
    source.fail = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(errors.map((e) => e.message)).toEqual(["read failed", "read failed"]);
    expect(monitor.last?.at).toBe(2_000);
    source.fail = false;
    await vi.advanceTimersByTimeAsync(1_000); // the run that began at t=0 reaches 5 s
    expect(events).toEqual(["pressure@5000"]);
    monitor.stop();
  });

  it("rejects bad timing", () => {
    const source = new FakeSource();
    expect(() => new PressureMonitor({ source, intervalMs: 0, sustainMs: 1, reliefMs: 1 })).toThrow(/intervalMs must be a positive/);
    expect(() => new PressureMonitor({ source, intervalMs: 1, sustainMs: -1, reliefMs: 1 })).toThrow(/sustainMs/);
    expect(() => new PressureMonitor({ source, intervalMs: 1, sustainMs: 1, reliefMs: Number.NaN })).toThrow(/reliefMs/);
  });
});

describe("pressure file parsers", () => {
  it("parses a PSI file", () => {
    const psi = parsePsi("some avg10=12.35 avg60=3.40 avg300=0.71 total=48211974\nfull avg10=4.02 avg60=1.10 avg300=0.20 total=15003021\n");
    expect(psi).toEqual({
      some: { avg10: 12.35, avg60: 3.4, avg300: 0.71, total: 48211974 },
      full: { avg10: 4.02, avg60: 1.1, avg300: 0.2, total: 15003021 },
    });
    expect(parsePsi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").full).toBeUndefined();
    expect(() => parsePsi("")).toThrow(/no 'some' line/);
    expect(() => parsePsi("some avg10=x avg60=0.00 avg300=0.00 total=0")).toThrow(/malformed PSI line/);
  });

  it("parses memory.events", () => {
    expect(parseMemoryEvents("low 0\nhigh 1543\nmax 27\noom 1\noom_kill 1\noom_group_kill 0\n")).toEqual({
      low: 0,
      high: 1543,
      max: 27,
      oom: 1,
      oom_kill: 1,
      oom_group_kill: 0,
    });
  });

  it("parses /proc/meminfo into bytes", () => {
    const text = [
      "MemTotal:       24731400 kB",
      "MemFree:        22999768 kB",
      "MemAvailable:   24264540 kB",
      "Active(anon):     123456 kB",
      "HugePages_Total:       0",
      "Hugepagesize:       2048 kB",
    ].join("\n");
    const info = parseMeminfo(text);
    expect(info.MemTotal).toBe(24731400 * 1024);
    expect(info.MemAvailable).toBe(24264540 * 1024);
    expect(info["Active(anon)"]).toBe(123456 * 1024);
    expect(info.HugePages_Total).toBe(0);
  });

  it("finds the cgroup v2 path in /proc/self/cgroup, pure v2 or hybrid", () => {
    expect(cgroupV2Path("0::/system.slice/edgellm.service\n")).toBe("/system.slice/edgellm.service");
    expect(cgroupV2Path("12:memory:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n")).toBe("/docker/abc");
    expect(cgroupV2Path("4:memory:/process_api/x\n1:cpu:/\n")).toBeUndefined();
  });
});

describe("defaultPressureSource on a fake /proc and /sys tree", () => {
  let root: string;
  const put = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  };
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "pressure-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const psiText = (some: number, full: number) =>
    `some avg10=${some.toFixed(2)} avg60=0.00 avg300=0.00 total=100\nfull avg10=${full.toFixed(2)} avg60=0.00 avg300=0.00 total=50\n`;
  const eventsText = (high: number, max: number, oom = 0) => `low 0\nhigh ${high}\nmax ${max}\noom ${oom}\noom_kill ${oom}\n`;

  it("reads the cgroup's PSI and memory.events deltas", async () => {
    put("proc/self/cgroup", "0::/system.slice/edgellm.service\n");
    const dir = "sys/fs/cgroup/system.slice/edgellm.service";
    put(`${dir}/memory.pressure`, psiText(1.5, 0));
    put(`${dir}/memory.events`, eventsText(10, 2));
    const source = defaultPressureSource(undefined, { fsRoot: root });

    const first = await source.read();
    expect(first).toMatchObject({ source: "psi", psi: { someAvg10: 1.5, fullAvg10: 0 }, events: { high: 0, max: 0, oom: 0, oomKill: 0 }, pressured: false });
    expect(first.reason).toBe("PSI some avg10=1.50% full avg10=0.00% under (limits some 20%, full 5%)");

    put(`${dir}/memory.events`, eventsText(13, 2));
    const second = await source.read();
    expect(second).toMatchObject({ pressured: true, events: { high: 3, max: 0 } });
    expect(second.reason).toMatch(/; memory\.events high \+3$/);

    put(`${dir}/memory.pressure`, psiText(2, 6.25));
    const third = await source.read();
    expect(third).toMatchObject({ pressured: true, psi: { fullAvg10: 6.25 }, events: { high: 0 } });
    expect(third.reason).toMatch(/full avg10=6\.25% at or over/);
  });

  it("honours custom thresholds", async () => {
    put("proc/self/cgroup", "0::/app\n");
    put("sys/fs/cgroup/app/memory.pressure", psiText(8, 0));
    expect((await defaultPressureSource(undefined, { fsRoot: root }).read()).pressured).toBe(false);
    expect((await defaultPressureSource(undefined, { fsRoot: root, thresholds: { psiSomeAvg10: 5 } }).read()).pressured).toBe(true);
  });

  it("finds the unified hierarchy of a hybrid host", async () => {
    put("proc/self/cgroup", "4:memory:/x\n0::/user.slice\n");
    put("sys/fs/cgroup/unified/user.slice/memory.pressure", psiText(30, 0));
    expect(await defaultPressureSource(undefined, { fsRoot: root }).read()).toMatchObject({ source: "psi", pressured: true, events: undefined });
  });

  it("uses /proc/pressure/memory for a process in the root cgroup", async () => {
    put("proc/self/cgroup", "0::/\n");
    put("proc/pressure/memory", psiText(0, 0));
    expect(await defaultPressureSource(undefined, { fsRoot: root }).read()).toMatchObject({ source: "psi", pressured: false });
  });

  it("falls back to memory.events without PSI", async () => {
    put("proc/self/cgroup", "0::/app\n");
    put("sys/fs/cgroup/app/memory.events", eventsText(0, 0));
    const source = defaultPressureSource(undefined, { fsRoot: root });
    expect(await source.read()).toMatchObject({ source: "cgroup-events", pressured: false });
    put("sys/fs/cgroup/app/memory.events", eventsText(0, 0, 1));
    const reading = await source.read();
    expect(reading).toMatchObject({ source: "cgroup-events", pressured: true, events: { oom: 1, oomKill: 1 } });
    expect(reading.reason).toBe("memory.events oom +1, oom_kill +1");
  });

  it("falls back to MemAvailable against the budget, else MemTotal", async () => {
    put("proc/self/cgroup", "4:memory:/x\n1:cpu:/\n");
    put("proc/meminfo", "MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:     300000 kB\n");
    const withBudget = await defaultPressureSource(2_000_000 * 1024, { fsRoot: root }).read();
    expect(withBudget).toMatchObject({ source: "available", availableBytes: 300000 * 1024, budgetBytes: 2_000_000 * 1024, pressured: false });
    const noBudget = await defaultPressureSource(undefined, { fsRoot: root }).read();
    expect(noBudget).toMatchObject({ budgetBytes: 4_000_000 * 1024, pressured: true });
    expect(noBudget.reason).toBe("MemAvailable 293 MiB below 10% of the 3906 MiB budget (391 MiB)");
  });
});

describe("defaultPressureSource on this machine", () => {
  it("reads a pressure reading with its numbers", async () => {
    const reading = await defaultPressureSource().read();
    expect(["psi", "cgroup-events", "available"]).toContain(reading.source);
    expect(Math.abs(reading.at - Date.now())).toBeLessThan(5_000);
    expect(typeof reading.pressured).toBe("boolean");
    expect(reading.reason.length).toBeGreaterThan(0);
    if (reading.source === "psi") expect(reading.psi!.someAvg10).toBeGreaterThanOrEqual(0);
    if (reading.source === "available") expect(reading.availableBytes!).toBeGreaterThan(0);
    console.log(`pressure source on this machine: ${reading.source}: ${reading.reason}`);
  });
});
