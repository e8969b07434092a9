/**
 * Ollama's `keep_alive`: how long a model stays loaded after a request. A duration string
 * ("5m", "1h30m", "90s", "500ms") or a number of seconds; 0 unloads the model right after the
 * request, a negative value keeps it loaded until it is evicted or unloaded by hand.
 */
import { invalidRequest } from "../openai/errors.js";
import type { KeepAliveMs } from "../router/served-model.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^(-?)((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$/;

const badKeepAlive = (value: unknown) =>
  invalidRequest(
    `Invalid keep_alive ${JSON.stringify(value)}: expected a duration such as "5m" or "30s", a number of seconds, 0 (unload after the request) or -1 (keep loaded)`,
    "keep_alive",
  );

function fromSeconds(seconds: number): KeepAliveMs {
  return seconds < 0 ? Infinity : seconds * 1000;
}

export function parseKeepAlive(value: unknown): KeepAliveMs | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw badKeepAlive(value);
    return fromSeconds(value);
  }
  if (typeof value !== "string") throw badKeepAlive(value);
  const text = value.trim();
  if (text !== "" && !Number.isNaN(Number(text))) return fromSeconds(Number(text));
  const match = DURATION.exec(text);
  if (!match) throw badKeepAlive(value);
  let ms = 0;
  for (const [, amount, unit] of match[2]!.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(amount) * UNIT_MS[unit!]!;
  return match[1] === "-" ? Infinity : ms;
}

/** The `keep_alive` of a request body (any API's), validated. */
export function keepAliveOf(body: unknown): KeepAliveMs | undefined {
  return typeof body === "object" && body !== null ? parseKeepAlive((body as { keep_alive?: unknown }).keep_alive) : undefined;
}
