/** Observes one chat request from the main process, where the client's view of time lives. */
import type { Metrics } from "./definitions.js";
import type { FinishReason, Timings } from "../engine/types.js";

/** The request's summary log line; filled in place as the request goes on. */
export interface RequestSummary {
  model: string;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  ttftMs: number | null;
  tokensPerSecond: number | null;
  finishReason: string | null;
}

export class RequestMetrics {
  private readonly started = performance.now();
  private firstTokenAt = 0;
  private lastTokenAt = 0;
  private ended = false;
  readonly summary: RequestSummary;

  constructor(private readonly metrics: Metrics, private readonly model: string) {
    this.summary = {
      model,
      promptTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
      cachedTokens: 0,
      ttftMs: null,
      tokensPerSecond: null,
      finishReason: null,
    };
  }

  accepted(promptTokens: number): void {
    this.summary.promptTokens += promptTokens;
    this.metrics.promptTokens.inc({ model: this.model }, promptTokens);
    this.metrics.promptLength.observe({ model: this.model }, promptTokens);
  }

  /** `count` tokens arrived now (one text event may carry several). */
  tokens(count: number): void {
    if (count <= 0) return;
    const now = performance.now();
    if (!this.firstTokenAt) {
      this.firstTokenAt = now;
      this.summary.ttftMs = Math.round(now - this.started);
      this.metrics.ttft.observe({ model: this.model }, (now - this.started) / 1000);
    } else {
      const perToken = (now - this.lastTokenAt) / 1000 / count;
      for (let i = 0; i < count; i++) this.metrics.itl.observe({ model: this.model }, perToken);
    }
    this.lastTokenAt = now;
  }

  /** One choice finished normally. */
  choiceFinished(r: { finishReason: FinishReason | "tool_calls"; completionTokens: number; reasoningTokens: number; cachedTokens: number; timings: Timings }): void {
    const m = { model: this.model };
    this.summary.completionTokens += r.completionTokens;
    this.summary.reasoningTokens += r.reasoningTokens;
    this.summary.cachedTokens = Math.max(this.summary.cachedTokens, r.cachedTokens);
    this.summary.finishReason = r.finishReason;
    this.metrics.generationTokens.inc(m, r.completionTokens);
    this.metrics.reasoningTokens.inc(m, r.reasoningTokens);
    this.metrics.generationLength.observe(m, r.completionTokens);
    this.metrics.requestsFinished.inc({ ...m, finish_reason: r.finishReason });
    this.metrics.queueTime.observe(m, r.timings.queueMs / 1000);
    this.metrics.prefillTime.observe(m, r.timings.prefillMs / 1000);
  }

  /** The prompt's prefix-cache outcome, once per request. */
  prefix(queriedTokens: number, hitTokens: number): void {
    this.metrics.prefixQueriedTokens.inc({ model: this.model }, queriedTokens);
    this.metrics.prefixHitTokens.inc({ model: this.model }, hitTokens);
  }

  /** The whole request ended (all choices). */
  completed(): void {
    if (this.ended) return;
    this.ended = true;
    const now = performance.now();
    this.metrics.e2e.observe({ model: this.model }, (now - this.started) / 1000);
    if (this.firstTokenAt && this.summary.completionTokens > 1 && this.lastTokenAt > this.firstTokenAt) {
      this.summary.tokensPerSecond = Math.round(((this.summary.completionTokens - 1) / ((this.lastTokenAt - this.firstTokenAt) / 1000)) * 10) / 10;
    }
  }

  disconnected(): void {
    if (this.ended) return;
    this.ended = true;
    this.summary.finishReason = "client_disconnected";
    this.metrics.clientDisconnects.inc({ model: this.model });
  }

  /** The generation failed after the response started (the error handler never sees these). */
  failed(code: string): void {
    if (this.ended) return;
    this.ended = true;
    this.summary.finishReason = "error";
    this.metrics.requestsFailed.inc({ code });
  }
}
