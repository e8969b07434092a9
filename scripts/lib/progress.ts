/**
 * Download progress for a terminal and for logs. On a TTY, one bar redrawn in place
 * (`[#####-----]  42%  6.9/16.4 MiB  3.2 MiB/s  ETA 0:03`) at most every `redrawMs`; elsewhere,
 * one plain line per `percentStep` percent and at least one every `lineEveryMs` while bytes move.
 * The rate is measured over the last `windowMs` of samples, so the ETA follows the current speed.
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** `m:ss` under an hour, `h:mm:ss` above, `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const two = (n: number) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** Bytes per second over a sliding window of (time, bytes) samples. */
export class RateMeter {
  readonly #windowMs: number;
  #samples: Array<{ at: number; bytes: number }> = [];

  constructor(windowMs = 5_000) {
    this.#windowMs = windowMs;
  }

  sample(bytes: number, at: number): void {
    this.#samples.push({ at, bytes });
    // Keep one sample at or before the window's start, so the window is always fully covered.
    while (this.#samples.length > 2 && this.#samples[1]!.at <= at - this.#windowMs) this.#samples.shift();
  }

  /** Bytes per second, 0 until two samples are at least 1 ms apart. */
  rate(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < 1) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.at - first.at);
  }
}

export interface ProgressState {
  done: number;
  total: number;
  /** Bytes per second. */
  rate: number;
}

/** Seconds left at the current rate, Infinity when unknown. */
export const etaSeconds = ({ done, total, rate }: ProgressState) => (rate > 0 && total > 0 ? Math.max(0, total - done) / rate : Infinity);

const percentOf = ({ done, total }: ProgressState) => (total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0);

/** The TTY line: label, bar, percent, bytes, rate and ETA, cut to `columns`. */
export function barLine(label: string, state: ProgressState, columns: number): string {
  const pct = percentOf(state);
  const stats = ` ${String(pct).padStart(3)}%  ${formatBytes(state.done)}/${formatBytes(state.total)}  ${formatBytes(state.rate)}/s  ETA ${formatDuration(etaSeconds(state))}`;
  const barWidth = Math.max(10, Math.min(40, columns - label.length - stats.length - 4));
  const filled = Math.round((barWidth * pct) / 100);
  const line = `${label} [${"#".repeat(filled)}${"-".repeat(barWidth - filled)}]${stats}`;
  return line.length > columns ? line.slice(0, Math.max(0, columns)) : line;
}

/** The non-TTY line. */
export function plainLine(label: string, state: ProgressState): string {
  return `${label}: ${percentOf(state)}% (${formatBytes(state.done)} of ${formatBytes(state.total)}, ${formatBytes(state.rate)}/s, ETA ${formatDuration(etaSeconds(state))})`;
}

export interface ProgressReporterOptions {
  label: string;
  tty: boolean;
  /** Terminal width; 80 when unknown or 0. */
  columns?: number;
  write: (text: string) => void;
  now?: () => number;
  redrawMs?: number;
  lineEveryMs?: number;
  percentStep?: number;
  windowMs?: number;
}

export class ProgressReporter {
  readonly #opts: Required<Omit<ProgressReporterOptions, "columns">> & { columns: number };
  readonly #meter: RateMeter;
  readonly #startedAt: number;
  #lastWriteAt = -Infinity;
  #lastStep = -1;
  #lastDone = 0;
  #drawn = false;

  constructor(options: ProgressReporterOptions) {
    // A terminal of unknown size (a pty without one reports 0 columns) gets 80.
    const columns = options.columns !== undefined && options.columns > 0 ? options.columns : 80;
    this.#opts = { now: Date.now, redrawMs: 100, lineEveryMs: 5_000, percentStep: 10, windowMs: 5_000, ...options, columns };
    this.#meter = new RateMeter(this.#opts.windowMs);
    this.#startedAt = this.#opts.now();
    this.#meter.sample(0, this.#startedAt);
  }

  update(done: number, total: number): void {
    const now = this.#opts.now();
    this.#meter.sample(done, now);
    const state = { done, total, rate: this.#meter.rate() };
    if (this.#opts.tty) {
      if (now - this.#lastWriteAt < this.#opts.redrawMs) return;
      this.#opts.write(`\r${barLine(this.#opts.label, state, this.#opts.columns)}\x1b[K`);
      this.#drawn = true;
    } else {
      const step = Math.floor(percentOf(state) / this.#opts.percentStep);
      const moved = done > this.#lastDone;
      const due = step > this.#lastStep || (moved && now - this.#lastWriteAt >= this.#opts.lineEveryMs);
      if (!due) return;
      this.#lastStep = step;
      this.#lastDone = done;
      this.#opts.write(`${plainLine(this.#opts.label, state)}\n`);
    }
    this.#lastWriteAt = now;
  }

  /** Draws the bar full (a throttled last update may not have been drawn) and writes the summary: size, time and average rate. */
  finish(bytes: number): void {
    const seconds = (this.#opts.now() - this.#startedAt) / 1000;
    const average = seconds > 0 ? bytes / seconds : 0;
    if (this.#drawn) this.#opts.write(`\r${barLine(this.#opts.label, { done: bytes, total: bytes, rate: average }, this.#opts.columns)}\x1b[K\n`);
    this.#opts.write(`${this.#opts.label}: ${formatBytes(bytes)} in ${formatDuration(seconds)} (${formatBytes(average)}/s)\n`);
  }

  /** Ends the bar's line, if one is drawn, so a message can follow. */
  abandon(): void {
    if (this.#drawn) this.#opts.write("\n");
    this.#drawn = false;
  }
}
