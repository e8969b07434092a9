/** Checked conversions of parseArgs values: a bad value is one clear line naming the option. */

export interface NumberBounds {
  min?: number;
  max?: number;
  /** Default true. */
  integer?: boolean;
}

export function numberArg(name: string, value: unknown, { min = 0, max = Number.MAX_SAFE_INTEGER, integer = true }: NumberBounds = {}): number {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new Error(`--${name} must be ${integer ? "an integer" : "a number"} ${range}, got '${String(value)}'`);
  }
  return n;
}

/** A comma-separated list whose items must be among `allowed`. */
export function listArg<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(",").map((s) => s.trim()) as T[];
  for (const item of items) {
    if (!allowed.includes(item)) throw new Error(`--${name}: unknown "${item}"; expected one of ${allowed.join(", ")}`);
  }
  return items;
}
