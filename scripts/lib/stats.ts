/** Percentiles and table formatting for the benchmark. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return "-";
  return n.toFixed(digits);
}

/** a / b as "0.93x"; "-" when either is missing. */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "-";
  return `${(a / b).toFixed(2)}x`;
}

export function mib(bytes: number): string {
  if (!Number.isFinite(bytes)) return "-";
  return `${Math.round(bytes / 1024 / 1024)}`;
}

/** A Markdown table (also readable as plain text); the first `textColumns` columns are left-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], textColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (i < textColumns ? (cells[i] ?? "").padEnd(w) : (cells[i] ?? "").padStart(w))).join(" | ")} |`;
  const sep = `|${widths.map((w, i) => (i < textColumns ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), sep, ...rows.map(line)].join("\n");
}
