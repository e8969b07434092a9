/**
 * One soak request: a streaming chat completion with usage, read as raw SSE, that may hang up
 * on purpose at a planned point. Every way it can end is classified, so the soak can tell
 * deliberate outcomes (429 backpressure, our own disconnects) from failures.
 */
import { deltaText, sseEvents, type ChatChunk } from "../lib/sse.js";

export interface SoakTarget {
  baseURL: string;
  model: string;
  /** Client-side bound on one request, queueing included: a hang becomes an error, not a stuck soak. */
  timeoutMs: number;
}

export interface SoakRequestSpec {
  prompt: string;
  maxTokens: number;
  seed: number;
}

/**
 * Where to hang up. `chunks`: after that many content chunks (0 = as soon as the headers are
 * in, i.e. while the request waits for a sequence or is in prefill). `afterMs`: on a timer from
 * the send, which can land before the headers (the request is still being admitted) or anywhere later.
 */
export type DisconnectPlan = { chunks: number } | { afterMs: number };

export type DisconnectPhase = "before headers" | "before first token" | "mid-stream";

export type Outcome =
  | { kind: "completed"; ttftMs: number; e2eMs: number; completionTokens: number; finishReason: string }
  | { kind: "rejected" }
  | { kind: "disconnected"; phase: DisconnectPhase; chunks: number }
  | { kind: "error"; message: string };

export async function soakRequest(target: SoakTarget, spec: SoakRequestSpec, disconnect?: DisconnectPlan): Promise<Outcome> {
  const hangUp = new AbortController();
  let hungUp = false;
  const hangUpNow = () => {
    hungUp = true;
    hangUp.abort();
  };
  const timer = disconnect && "afterMs" in disconnect ? setTimeout(hangUpNow, disconnect.afterMs) : undefined;
  const t0 = performance.now();
  let headers = false;
  let chunks = 0;
  let ttftMs = Number.NaN;
  const disconnected = (): Outcome => ({
    kind: "disconnected",
    phase: !headers ? "before headers" : chunks === 0 ? "before first token" : "mid-stream",
    chunks,
  });
  try {
    const res = await fetch(`${target.baseURL}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({
        model: target.model,
        messages: [{ role: "user", content: spec.prompt }],
        max_tokens: spec.maxTokens,
        stream: true,
        stream_options: { include_usage: true },
        seed: spec.seed,
        // Thinking off: every token is answer content, so TTFT and token counts mean the same on every model.
        chat_template_kwargs: { enable_thinking: false },
      }),
      signal: AbortSignal.any([hangUp.signal, AbortSignal.timeout(target.timeoutMs)]),
    });
    headers = true;
    if (res.status === 429) {
      await res.body?.cancel();
      return { kind: "rejected" };
    }
    if (!res.ok || !res.body) return { kind: "error", message: `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}` };
    if (disconnect && "chunks" in disconnect && disconnect.chunks === 0) {
      hangUpNow();
      return disconnected();
    }
    let sawDone = false;
    let finishReason: string | null = null;
    let completionTokens: number | null = null;
    for await (const { data } of sseEvents(res.body)) {
      if (data === "[DONE]") {
        sawDone = true;
        continue;
      }
      const chunk = JSON.parse(data) as ChatChunk;
      if (chunk.error) return { kind: "error", message: `SSE error event: ${chunk.error.code ?? ""} ${chunk.error.message ?? ""}`.trim() };
      const choice = chunk.choices?.[0];
      if (deltaText(chunk) !== "") {
        if (chunks === 0) ttftMs = performance.now() - t0;
        chunks++;
        if (disconnect && "chunks" in disconnect && chunks >= disconnect.chunks) {
          hangUpNow();
          return disconnected();
        }
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens ?? null;
    }
    const e2eMs = performance.now() - t0;
    // Each of these is a protocol violation the soak must see, not average away.
    if (!sawDone) return { kind: "error", message: "stream ended without [DONE]" };
    if (finishReason === null) return { kind: "error", message: "stream had no finish_reason" };
    if (completionTokens === null) return { kind: "error", message: "stream had no usage chunk despite include_usage" };
    return { kind: "completed", ttftMs, e2eMs, completionTokens, finishReason };
  } catch (err) {
    if (hungUp) return disconnected();
    const e = err as Error;
    if (e.name === "TimeoutError") return { kind: "error", message: `no end within the client timeout of ${target.timeoutMs} ms` };
    // fetch reports socket failures as "fetch failed" with the real reason (ECONNRESET, ...) in `cause`.
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : "";
    return { kind: "error", message: `${e.name}: ${e.message}${cause}` };
  } finally {
    clearTimeout(timer);
  }
}
