/**
 * The load generator: streaming chat completions against an OpenAI-compatible server, timed
 * per chunk on the client side.
 */
import { sseEvents, deltaText, type ChatChunk } from "../lib/sse.js";
import { mean, percentile } from "../lib/stats.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface RequestSpec {
  messages: ChatMessage[];
  maxTokens: number;
  seed: number;
}

export interface RequestResult {
  ok: boolean;
  error?: string;
  /** Why the first try failed, when the request was sent a second time. */
  retried?: string;
  /** Client-side: request sent to first content chunk. */
  ttftMs: number;
  e2eMs: number;
  /** Gaps between successive content chunks after the first. */
  gapsMs: number[];
  chunks: number;
  completionTokens: number;
  promptTokens: number;
  cachedTokens: number;
  finishReason: string | null;
  maxTokens: number;
}

export interface LoadResult {
  results: RequestResult[];
  wallMs: number;
}

export interface Summary {
  requests: number;
  failed: number;
  /** The failed requests' distinct errors. */
  errors: string[];
  /** Requests sent twice because the first try got no response, and why. */
  retried: number;
  retryErrors: string[];
  /** Requests that stopped before max_tokens (end of generation or a stop string). */
  earlyStop: number;
  outputTokens: number;
  promptTokens: number;
  cachedTokens: number;
  wallS: number;
  /** Aggregate output tokens per second of wall time. */
  outTokS: number;
  ttftP50: number;
  ttftP99: number;
  itlP50: number;
  itlP99: number;
  /** Mean time per output token after the first: (e2e - ttft) / (tokens - 1), averaged over requests. */
  tpotMean: number;
  /** Mean single-request decode rate, 1000 / tpot. */
  decodeTokS: number;
}

export interface LoadOptions {
  baseURL: string;
  model: string;
  /** Extra fields for every request body. */
  extraBody?: Record<string, unknown>;
  timeoutMs?: number;
}

/** fetch's "fetch failed" with what failed underneath (e.g. "SocketError: other side closed"). */
function errorText(err: unknown): string {
  const cause = (err as Error).cause;
  return `${(err as Error).message}${cause ? `: ${String(cause)}` : ""}`;
}

export async function streamChat(opts: LoadOptions, spec: RequestSpec): Promise<RequestResult> {
  const body = {
    model: opts.model,
    messages: spec.messages,
    max_tokens: spec.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
    // Same sampling on every server; thinking off so both render the same generation prompt.
    temperature: 0.7,
    top_p: 0.8,
    top_k: 20,
    seed: spec.seed,
    chat_template_kwargs: { enable_thinking: false },
    // llama-server: generate exactly max_tokens. edgellm ignores it: actual tokens are counted.
    ignore_eos: true,
    ...opts.extraBody,
  };
  const result: RequestResult = {
    ok: false,
    ttftMs: Number.NaN,
    e2eMs: Number.NaN,
    gapsMs: [],
    chunks: 0,
    completionTokens: 0,
    promptTokens: 0,
    cachedTokens: 0,
    finishReason: null,
    maxTokens: spec.maxTokens,
  };
  const t0 = performance.now();
  let last = 0;
  try {
    const post = () =>
      fetch(`${opts.baseURL}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 600_000),
      });
    let res: Response;
    try {
      res = await post();
    } catch (err) {
      // A connection that fails before any response (a kept-alive socket the server had
      // closed) is tried once more, as the openai SDK does; the time counts from the first try.
      if ((err as Error).name === "TimeoutError") throw err;
      result.retried = errorText(err);
      res = await post();
    }
    if (!res.ok || !res.body) {
      result.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
      return result;
    }
    let done = false;
    for await (const { data, at: now } of sseEvents(res.body)) {
      if (data === "[DONE]") {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data) as ChatChunk;
      if (chunk.error) throw new Error(chunk.error.message ?? "stream error");
      const choice = chunk.choices?.[0];
      if (deltaText(chunk).length > 0) {
        if (result.chunks === 0) result.ttftMs = now - t0;
        else result.gapsMs.push(now - last);
        last = now;
        result.chunks++;
      }
      if (choice?.finish_reason) result.finishReason = choice.finish_reason;
      if (chunk.usage) {
        result.completionTokens = chunk.usage.completion_tokens ?? 0;
        result.promptTokens = chunk.usage.prompt_tokens ?? 0;
        result.cachedTokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
      }
    }
    result.e2eMs = performance.now() - t0;
    if (result.completionTokens === 0) result.completionTokens = result.chunks;
    result.ok = done || result.finishReason !== null;
    if (!result.ok) result.error = "stream ended without [DONE]";
  } catch (err) {
    result.error = errorText(err);
  }
  return result;
}

/**
 * Runs `jobs` (each a list of requests sent one after the other, like one user's conversation)
 * with `concurrency` workers pulling jobs from a shared queue; worker i starts `staggerMs` x i
 * after the first (0: all at once).
 */
export async function runLoad(opts: LoadOptions, jobs: RequestSpec[][], concurrency: number, staggerMs = 0): Promise<LoadResult> {
  const queue = [...jobs];
  const results: RequestResult[] = [];
  const t0 = performance.now();
  const worker = async (_: unknown, i: number) => {
    if (staggerMs > 0) await new Promise((r) => setTimeout(r, staggerMs * i));
    for (let job = queue.shift(); job; job = queue.shift()) {
      for (const spec of job) results.push(await streamChat(opts, spec));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
  return { results, wallMs: performance.now() - t0 };
}

export function summarize(load: LoadResult): Summary {
  const ok = load.results.filter((r) => r.ok);
  const outputTokens = ok.reduce((a, r) => a + r.completionTokens, 0);
  const tpots = ok.filter((r) => r.completionTokens > 1).map((r) => (r.e2eMs - r.ttftMs) / (r.completionTokens - 1));
  const gaps = ok.flatMap((r) => r.gapsMs);
  const tpotMean = mean(tpots);
  return {
    requests: load.results.length,
    failed: load.results.length - ok.length,
    errors: [...new Set(load.results.flatMap((r) => (r.ok ? [] : [r.error ?? "unknown error"])))],
    retried: load.results.filter((r) => r.retried !== undefined).length,
    retryErrors: [...new Set(load.results.flatMap((r) => (r.retried === undefined ? [] : [r.retried])))],
    earlyStop: ok.filter((r) => r.completionTokens < r.maxTokens).length,
    outputTokens,
    promptTokens: ok.reduce((a, r) => a + r.promptTokens, 0),
    cachedTokens: ok.reduce((a, r) => a + r.cachedTokens, 0),
    wallS: load.wallMs / 1000,
    outTokS: outputTokens / (load.wallMs / 1000),
    ttftP50: percentile(ok.map((r) => r.ttftMs), 50),
    ttftP99: percentile(ok.map((r) => r.ttftMs), 99),
    itlP50: percentile(gaps, 50),
    itlP99: percentile(gaps, 99),
    tpotMean,
    decodeTokS: 1000 / tpotMean,
  };
}
