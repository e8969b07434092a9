import { describe, expect, it } from "vitest";
import { barLine, etaSeconds, formatBytes, formatDuration, plainLine, ProgressReporter, RateMeter } from "../../scripts/lib/progress.js";

const MiB = 2 ** 20;

describe("progress formatting", () => {
  it("formats bytes and durations", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023.4)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(16372032)).toBe("15.6 MiB");
    expect(formatBytes(3 * 2 ** 30)).toBe("3.0 GiB");
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(65.4)).toBe("1:05");
    expect(formatDuration(3723)).toBe("1:02:03");
    expect(formatDuration(Infinity)).toBe("--:--");
  });

  it("computes the ETA from the rate, unknown without one", () => {
    expect(etaSeconds({ done: 4 * MiB, total: 10 * MiB, rate: 2 * MiB })).toBe(3);
    expect(etaSeconds({ done: 0, total: 10 * MiB, rate: 0 })).toBe(Infinity);
  });

  it("draws the bar line with percent, bytes, rate and ETA, within the width", () => {
    const state = { done: 4.2 * MiB, total: 10 * MiB, rate: 2 * MiB };
    const line = barLine("model.gguf", state, 100);
    expect(line).toBe(`model.gguf [${"#".repeat(17)}${"-".repeat(23)}]  42%  4.2 MiB/10.0 MiB  2.0 MiB/s  ETA 0:03`);
    expect(barLine("model.gguf", state, 60).length).toBeLessThanOrEqual(60);
    expect(barLine("m", { done: 10, total: 10, rate: 0 }, 80)).toContain(`[${"#".repeat(40)}] 100%`);
  });

  it("writes the plain line", () => {
    expect(plainLine("m.gguf", { done: 5 * MiB, total: 10 * MiB, rate: MiB })).toBe("m.gguf: 50% (5.0 MiB of 10.0 MiB, 1.0 MiB/s, ETA 0:05)");
  });
});

describe("RateMeter", () => {
  it("measures over the last window, so the rate follows a change of speed", () => {
    const meter = new RateMeter(5_000);
    expect(meter.rate()).toBe(0);
    meter.sample(0, 0);
    for (let t = 1_000; t <= 10_000; t += 1_000) meter.sample(t * 1_000, t); // 1 MB/s (decimal) for 10 s
    expect(meter.rate()).toBeCloseTo(1_000_000);
    for (let t = 11_000; t <= 15_000; t += 1_000) meter.sample(10_000_000 + (t - 10_000) * 100, t); // then 100 KB/s
    expect(meter.rate()).toBeCloseTo(100_000);
  });
});

describe("ProgressReporter", () => {
  function reporter(tty: boolean) {
    let now = 0;
    const out: string[] = [];
    const r = new ProgressReporter({ label: "m.gguf", tty, columns: 100, write: (t) => out.push(t), now: () => now });
    return { r, out, at: (ms: number) => (now = ms) };
  }

  it("off a terminal writes a line per 10 % step, and one every 5 s while bytes move", () => {
    const { r, out, at } = reporter(false);
    const total = 100 * MiB;
    for (let t = 0; t <= 10_000; t += 100) {
      at(t);
      r.update(t * 1_000, total); // 1000 bytes/ms, 10 % past 10.5 s
    }
    // Below 10 % at 10 s: the 0 % line, then the 5 s heartbeats.
    expect(out.map((l) => l.slice(0, l.indexOf("(")))).toEqual(["m.gguf: 0% ", "m.gguf: 4% ", "m.gguf: 9% "]);
    at(10_500);
    r.update(11 * MiB, total);
    // Rate over 5.5 s → 10.5 s: (11 MiB − 5.5 MB) / 5 s = 1.2 MB/s; 89 MiB left at that rate: 77 s.
    expect(out.at(-1)).toBe("m.gguf: 11% (11.0 MiB of 100.0 MiB, 1.2 MiB/s, ETA 1:17)\n");
    // A stall writes nothing more: no bytes moved.
    at(30_000);
    r.update(11 * MiB, total);
    expect(out).toHaveLength(4);
    expect(out.join("")).not.toContain("\r");
    at(40_000);
    r.finish(total);
    expect(out.at(-1)).toBe("m.gguf: 100.0 MiB in 0:40 (2.5 MiB/s)\n");
  });

  it("on a terminal redraws one line in place at most every 100 ms", () => {
    const { r, out, at } = reporter(true);
    for (let t = 0; t <= 1_000; t += 10) {
      at(t);
      r.update(t * 990, 1_000_000);
    }
    expect(out).toHaveLength(11);
    expect(out.every((l) => l.startsWith("\rm.gguf [") && l.endsWith("\x1b[K"))).toBe(true);
    expect(out.at(-1)).toContain(" 99%");
    at(1_050);
    r.update(1_000_000, 1_000_000); // inside the 100 ms: not drawn
    expect(out).toHaveLength(11);
    at(2_000);
    r.finish(1_000_000);
    expect(out.slice(-2)).toEqual([
      `\r${barLine("m.gguf", { done: 1_000_000, total: 1_000_000, rate: 500_000 }, 100)}\x1b[K\n`,
      "m.gguf: 976.6 KiB in 0:02 (488.3 KiB/s)\n",
    ]);
  });

  it("draws an 80-column bar when the terminal reports no width", () => {
    for (const columns of [undefined, 0]) {
      const out: string[] = [];
      new ProgressReporter({ label: "m.gguf", tty: true, columns, write: (t) => out.push(t), now: () => 0 }).update(5, 10);
      expect(out[0]).toBe(`\r${barLine("m.gguf", { done: 5, total: 10, rate: 0 }, 80)}\x1b[K`);
      expect(out[0]).toContain("]  50%");
    }
  });

  it("abandon() ends a drawn bar so a message starts on its own line", () => {
    const { r, out } = reporter(true);
    r.abandon();
    expect(out).toEqual([]);
    r.update(1, 2);
    r.abandon();
    expect(out.at(-1)).toBe("\n");
  });
});
