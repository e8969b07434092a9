/**
 * Memory-pressure monitor (issue 12, quantization fallback). A `PressureSource` turns what the
 * kernel says into one `PressureReading` (pressured or not, with the numbers and a one-line
 * reason); the `PressureMonitor` samples it every `intervalMs` and applies the hysteresis:
 * "pressure" once readings have said pressured for `sustainMs` without a break, "relief" once
 * they have said not pressured for `reliefMs` without a break. A run of readings that flips
 * before its time is up starts over, so flapping fires nothing.
 *
 * The default source, best signal first:
 * - cgroup v2 `memory.pressure` (PSI) of the process's own cgroup, plus `memory.events` deltas:
 *   pressured when `some avg10` ≥ 20 %, `full avg10` ≥ 5 %, or a `high`, `max`, `oom` or
 *   `oom_kill` event happened since the previous reading (source "psi"). A process in the root
 *   cgroup reads `/proc/pressure/memory`, which is the root cgroup's PSI.
 * - `memory.events` alone when PSI is off in the kernel (source "cgroup-events").
 * - otherwise `MemAvailable` from `/proc/meminfo`: pressured when it is below 10 % of the budget
 *   (`budgetBytes`, else `MemTotal`) (source "available").
 * The thresholds are `DEFAULT_PRESSURE_THRESHOLDS`; the timing defaults (2 s samples, 30 s to
 * declare pressure, 5 min of calm to declare relief, as systemd-oomd's 30 s pressure duration and a
 * slower way back) are `DEFAULT_PRESSURE_TIMING`.
 */
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import path from "node:path";

export interface PressureReading {
  /** Epoch milliseconds of the sample. */
  at: number;
  source: "psi" | "cgroup-events" | "available";
  /** PSI percentages of wall time in the last 10 s with some / all tasks stalled on memory. */
  psi?: { someAvg10: number; fullAvg10: number };
  /** `memory.events` counter increases since the previous reading (0 on the first). */
  events?: { high: number; max: number; oom: number; oomKill: number };
  availableBytes?: number;
  budgetBytes?: number;
  pressured: boolean;
  /** One line with the numbers that decided `pressured`. */
  reason: string;
}

export interface PressureSource {
  read(): Promise<PressureReading>;
}

export interface PressureThresholds {
  /** Pressured when PSI `some avg10` (percent) reaches this. */
  psiSomeAvg10: number;
  /** Pressured when PSI `full avg10` (percent) reaches this. */
  psiFullAvg10: number;
  /** Without PSI or cgroup events: pressured when MemAvailable < this fraction of the budget. */
  availableMinRatio: number;
}

export const DEFAULT_PRESSURE_THRESHOLDS: Readonly<PressureThresholds> = { psiSomeAvg10: 20, psiFullAvg10: 5, availableMinRatio: 0.1 };

export const DEFAULT_PRESSURE_TIMING = { intervalMs: 2_000, sustainMs: 30_000, reliefMs: 300_000 } as const;

export interface PressureMonitorOptions {
  /** Defaults to `defaultPressureSource(budgetBytes, { thresholds })`. */
  source?: PressureSource;
  intervalMs: number;
  sustainMs: number;
  reliefMs: number;
  budgetBytes?: number;
  thresholds?: Partial<PressureThresholds>;
}

/**
 * Emits "pressure" (reading) once pressure has been sustained for `sustainMs`, "relief" (reading)
 * once it has been gone for `reliefMs`, and "error" (err) for a failed read when someone listens
 * (a failed read changes nothing). The timer does not keep the process alive.
 */
export class PressureMonitor extends EventEmitter {
  readonly #source: PressureSource;
  readonly #intervalMs: number;
  readonly #sustainMs: number;
  readonly #reliefMs: number;
  #under = false;
  #last?: PressureReading;
  /** Time of the first reading of the current unbroken run that disagrees with `#under`. */
  #contrarySince?: number;
  #timer?: NodeJS.Timeout;
  /** Bumped by start() and stop(), so a read in flight across a stop() is dropped. */
  #epoch = 0;
  #running = false;

  constructor(opts: PressureMonitorOptions) {
    super();
    for (const key of ["intervalMs", "sustainMs", "reliefMs"] as const) {
      const value = opts[key];
      if (!Number.isFinite(value) || value < 0 || (key === "intervalMs" && value === 0)) {
        throw new RangeError(`PressureMonitor: ${key} must be a ${key === "intervalMs" ? "positive" : "non-negative"} number, got ${value}`);
      }
    }
    this.#source = opts.source ?? defaultPressureSource(opts.budgetBytes, { thresholds: opts.thresholds });
    this.#intervalMs = opts.intervalMs;
    this.#sustainMs = opts.sustainMs;
    this.#reliefMs = opts.reliefMs;
  }

  get underPressure(): boolean {
    return this.#under;
  }

  get last(): PressureReading | undefined {
    return this.#last;
  }

  /** Reads at once, then every `intervalMs` after the previous read finished. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#tick(++this.#epoch);
  }

  stop(): void {
    this.#running = false;
    this.#epoch++;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #tick(epoch: number): Promise<void> {
    let reading: PressureReading | undefined;
    try {
      reading = await this.#source.read();
    } catch (err) {
      if (epoch === this.#epoch && this.listenerCount("error") > 0) this.emit("error", err);
    }
    if (epoch !== this.#epoch) return;
    if (reading) this.#observe(reading);
    // A listener may have called stop() (or stop() then start()) while observing.
    if (epoch !== this.#epoch) return;
    this.#timer = setTimeout(() => void this.#tick(epoch), this.#intervalMs);
    this.#timer.unref();
  }

  #observe(reading: PressureReading): void {
    this.#last = reading;
    if (reading.pressured === this.#under) {
      this.#contrarySince = undefined;
      return;
    }
    this.#contrarySince ??= reading.at;
    if (reading.at - this.#contrarySince < (this.#under ? this.#reliefMs : this.#sustainMs)) return;
    this.#under = reading.pressured;
    this.#contrarySince = undefined;
    this.emit(this.#under ? "pressure" : "relief", reading);
  }
}

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time in microseconds. */
  total: number;
}

/** Parses a PSI file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and the `full` line). */
export function parsePsi(text: string): { some: PsiLine; full?: PsiLine } {
  const lines: Partial<Record<"some" | "full", PsiLine>> = {};
  for (const line of text.split("\n")) {
    const match = /^(some|full)\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const fields = Object.fromEntries(match[2]!.split(/\s+/).map((pair) => pair.split("=") as [string, string]));
    const values = (["avg10", "avg60", "avg300", "total"] as const).map((key) => Number(fields[key]));
    if (values.some((value) => !Number.isFinite(value))) throw new Error(`malformed PSI line: ${line.trim()}`);
    const [avg10, avg60, avg300, total] = values as [number, number, number, number];
    lines[match[1] as "some" | "full"] = { avg10, avg60, avg300, total };
  }
  if (!lines.some) throw new Error("PSI text has no 'some' line");
  return { some: lines.some, full: lines.full };
}

/** Parses `memory.events` (`low 0`, `high 12`, `max 3`, `oom 0`, `oom_kill 0`, …) into counters. */
export function parseMemoryEvents(text: string): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^(\w+)\s+(\d+)$/.exec(line.trim());
    if (match) counters[match[1]!] = Number(match[2]);
  }
  return counters;
}

/** Parses `/proc/meminfo` into bytes (every `kB` value times 1024). */
export function parseMeminfo(text: string): Record<string, number> {
  const values: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const match = /^([\w()]+):\s+(\d+)(?:\s+kB)?$/.exec(line.trim());
    if (match) values[match[1]!] = Number(match[2]) * (line.trim().endsWith("kB") ? 1024 : 1);
  }
  return values;
}

/** The cgroup v2 path of a process from its `/proc/<pid>/cgroup` (the `0::/path` line), if it has one. */
export function cgroupV2Path(procCgroup: string): string | undefined {
  for (const line of procCgroup.split("\n")) {
    if (line.startsWith("0::")) return line.slice(3).trim() || "/";
  }
  return undefined;
}

export interface DefaultPressureSourceOptions {
  thresholds?: Partial<PressureThresholds>;
  /** Prefix for `/proc` and `/sys/fs/cgroup` (tests point it at a fake tree). */
  fsRoot?: string;
}

type Probe = { kind: "psi"; pressureFile: string; eventsFile?: string } | { kind: "cgroup-events"; eventsFile: string } | { kind: "available" };

const EVENT_KEYS = { high: "high", max: "max", oom: "oom", oomKill: "oom_kill" } as const;

const readText = (file: string) => readFile(file, "utf8");
const canRead = (file: string) => readText(file).then(() => true, () => false);
const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/**
 * cgroup v2 `memory.pressure` (PSI) and `memory.events` of the process's cgroup (found via
 * `/proc/self/cgroup` under `/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid hosts) where
 * available, else `MemAvailable` from `/proc/meminfo` against the budget (default: `MemTotal`).
 * The files are probed on the first read.
 */
export function defaultPressureSource(budgetBytes?: number, opts: DefaultPressureSourceOptions = {}): PressureSource {
  const thresholds = { ...DEFAULT_PRESSURE_THRESHOLDS, ...opts.thresholds };
  const root = opts.fsRoot ?? "/";
  const at = (...parts: string[]) => path.join(root, ...parts);
  let probe: Promise<Probe> | undefined;
  let previousEvents: Record<string, number> | undefined;

  async function detect(): Promise<Probe> {
    const cgroup = await readText(at("proc/self/cgroup")).then(cgroupV2Path, () => undefined);
    if (cgroup !== undefined) {
      for (const mount of ["sys/fs/cgroup", "sys/fs/cgroup/unified"]) {
        const dir = at(mount, cgroup);
        const pressureFile = path.join(dir, "memory.pressure");
        const eventsFile = path.join(dir, "memory.events");
        const [hasPressure, hasEvents] = await Promise.all([canRead(pressureFile), canRead(eventsFile)]);
        if (hasPressure) return { kind: "psi", pressureFile, eventsFile: hasEvents ? eventsFile : undefined };
        if (hasEvents) return { kind: "cgroup-events", eventsFile };
      }
      // The root cgroup has no memory.pressure of its own: its PSI is the system's.
      if (cgroup === "/" && (await canRead(at("proc/pressure/memory")))) return { kind: "psi", pressureFile: at("proc/pressure/memory") };
    }
    return { kind: "available" };
  }

  async function eventDeltas(file: string): Promise<NonNullable<PressureReading["events"]>> {
    const counters = parseMemoryEvents(await readText(file));
    const before = previousEvents ?? counters;
    previousEvents = counters;
    const delta = (key: string) => Math.max(0, (counters[key] ?? 0) - (before[key] ?? 0));
    return { high: delta(EVENT_KEYS.high), max: delta(EVENT_KEYS.max), oom: delta(EVENT_KEYS.oom), oomKill: delta(EVENT_KEYS.oomKill) };
  }

  function eventsReason(events: NonNullable<PressureReading["events"]>): string | undefined {
    const fired = Object.entries(events).filter(([, n]) => n > 0);
    return fired.length ? `memory.events ${fired.map(([key, n]) => `${EVENT_KEYS[key as keyof typeof EVENT_KEYS]} +${n}`).join(", ")}` : undefined;
  }

  return {
    async read(): Promise<PressureReading> {
      const how = await (probe ??= detect());
      const now = Date.now();
      if (how.kind === "psi") {
        const parsed = parsePsi(await readText(how.pressureFile));
        const psi = { someAvg10: parsed.some.avg10, fullAvg10: parsed.full?.avg10 ?? 0 };
        const events = how.eventsFile ? await eventDeltas(how.eventsFile) : undefined;
        const psiText = `PSI some avg10=${psi.someAvg10.toFixed(2)}% full avg10=${psi.fullAvg10.toFixed(2)}%`;
        const overPsi = psi.someAvg10 >= thresholds.psiSomeAvg10 || psi.fullAvg10 >= thresholds.psiFullAvg10;
        const fired = events && eventsReason(events);
        const pressured = overPsi || fired !== undefined;
        const limits = `(limits some ${thresholds.psiSomeAvg10}%, full ${thresholds.psiFullAvg10}%)`;
        const reason = [`${psiText} ${overPsi ? "at or over" : "under"} ${limits}`, fired].filter(Boolean).join("; ");
        return { at: now, source: "psi", psi, events, pressured, reason };
      }
      if (how.kind === "cgroup-events") {
        const events = await eventDeltas(how.eventsFile);
        const fired = eventsReason(events);
        return { at: now, source: "cgroup-events", events, pressured: fired !== undefined, reason: fired ?? "no memory.events high/max/oom since the previous reading" };
      }
      const meminfo = parseMeminfo(await readText(at("proc/meminfo")));
      const availableBytes = meminfo.MemAvailable ?? meminfo.MemFree;
      if (availableBytes === undefined) throw new Error("/proc/meminfo has neither MemAvailable nor MemFree");
      const budget = budgetBytes ?? meminfo.MemTotal;
      if (budget === undefined) throw new Error("no memory budget given and /proc/meminfo has no MemTotal");
      const floor = budget * thresholds.availableMinRatio;
      const pressured = availableBytes < floor;
      const reason = `MemAvailable ${mib(availableBytes)} ${pressured ? "below" : "at or above"} ${thresholds.availableMinRatio * 100}% of the ${mib(budget)} budget (${mib(floor)})`;
      return { at: now, source: "available", availableBytes, budgetBytes: budget, pressured, reason };
    },
  };
}
