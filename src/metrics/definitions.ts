/**
 * Every metric edgellm exports, in one place. The main process owns the registry; workers
 * report over IPC. Names follow Prometheus conventions with the `edgellm_` prefix; the README
 * maps each one to its vLLM counterpart. Buckets suit a CPU edge box: milliseconds to minutes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320];
const TOKEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5];
const TOKEN_COUNT_BUCKETS = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256, 512];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const m = { registers: [registry] };
  const model = ["model"] as const;
  return {
    registry,
    // Gauges, refreshed from the workers at scrape time.
    requestsRunning: new Gauge({ ...m, name: "edgellm_num_requests_running", help: "Requests holding a sequence (prefill or decode)", labelNames: model }),
    requestsWaiting: new Gauge({ ...m, name: "edgellm_num_requests_waiting", help: "Requests queued for a sequence", labelNames: model }),
    kvPagesUsed: new Gauge({ ...m, name: "edgellm_kv_pages_used", help: "KV cache pages holding tokens (running and cached prefixes)", labelNames: model }),
    kvPagesTotal: new Gauge({ ...m, name: "edgellm_kv_pages_total", help: "KV cache pages in the pool", labelNames: model }),
    kvUsageRatio: new Gauge({ ...m, name: "edgellm_kv_cache_usage_ratio", help: "Used KV pages / total (0..1)", labelNames: model }),
    sequencesBusy: new Gauge({ ...m, name: "edgellm_sequences_busy", help: "Sequences (slots) serving a request", labelNames: model }),
    sequencesTotal: new Gauge({ ...m, name: "edgellm_sequences_total", help: "Sequences (slots) configured", labelNames: model }),
    modelsLoaded: new Gauge({ ...m, name: "edgellm_models_loaded", help: "Models loaded and ready" }),
    modelState: new Gauge({ ...m, name: "edgellm_model_state", help: "1 for the state each served model is in (loaded, loading, unloaded), 0 for the others", labelNames: ["model", "state"] as const }),
    modelVariant: new Gauge({ ...m, name: "edgellm_model_variant", help: "Which variant serves the model: 0 = its own source, n = its n-th fallback (memory pressure)", labelNames: model }),
    // Counters.
    promptTokens: new Counter({ ...m, name: "edgellm_prompt_tokens_total", help: "Prompt tokens of admitted requests", labelNames: model }),
    generationTokens: new Counter({ ...m, name: "edgellm_generation_tokens_total", help: "Generated (completion) tokens", labelNames: model }),
    reasoningTokens: new Counter({ ...m, name: "edgellm_reasoning_tokens_total", help: "Generated tokens inside the reasoning block", labelNames: model }),
    prefixQueriedTokens: new Counter({ ...m, name: "edgellm_prefix_cache_queried_tokens_total", help: "Prompt tokens looked up in the prefix cache", labelNames: model }),
    prefixHitTokens: new Counter({ ...m, name: "edgellm_prefix_cache_hit_tokens_total", help: "Prompt tokens served from the prefix cache", labelNames: model }),
    preemptions: new Counter({ ...m, name: "edgellm_preemptions_total", help: "Requests preempted when the KV pool ran out", labelNames: model }),
    requestsFinished: new Counter({ ...m, name: "edgellm_requests_finished_total", help: "Completed requests by finish reason", labelNames: ["model", "finish_reason"] as const }),
    requestsFailed: new Counter({ ...m, name: "edgellm_requests_failed_total", help: "Failed requests by error code", labelNames: ["code"] as const }),
    fallbackSwaps: new Counter({ ...m, name: "edgellm_model_fallback_swaps_total", help: "Memory-pressure swaps to a smaller variant (down) and back (up)", labelNames: ["model", "direction"] as const }),
    workerRestarts: new Counter({ ...m, name: "edgellm_worker_restarts_total", help: "Model worker restarts after a crash", labelNames: model }),
    clientDisconnects: new Counter({ ...m, name: "edgellm_client_disconnects_total", help: "Requests whose client went away before the end", labelNames: model }),
    // Histograms.
    ttft: new Histogram({ ...m, name: "edgellm_time_to_first_token_seconds", help: "Request arrival to first generated token", labelNames: model, buckets: LATENCY_BUCKETS }),
    itl: new Histogram({ ...m, name: "edgellm_inter_token_latency_seconds", help: "Time between generated tokens", labelNames: model, buckets: TOKEN_LATENCY_BUCKETS }),
    e2e: new Histogram({ ...m, name: "edgellm_e2e_request_latency_seconds", help: "Request arrival to last token", labelNames: model, buckets: LATENCY_BUCKETS }),
    queueTime: new Histogram({ ...m, name: "edgellm_request_queue_time_seconds", help: "Time waiting for a sequence", labelNames: model, buckets: LATENCY_BUCKETS }),
    prefillTime: new Histogram({ ...m, name: "edgellm_request_prefill_time_seconds", help: "Prompt evaluation time", labelNames: model, buckets: LATENCY_BUCKETS }),
    promptLength: new Histogram({ ...m, name: "edgellm_request_prompt_tokens", help: "Prompt tokens per request", labelNames: model, buckets: TOKEN_COUNT_BUCKETS }),
    generationLength: new Histogram({ ...m, name: "edgellm_request_generation_tokens", help: "Generated tokens per request", labelNames: model, buckets: TOKEN_COUNT_BUCKETS }),
    batchTokens: new Histogram({ ...m, name: "edgellm_decode_batch_tokens", help: "Tokens evaluated per decode round (all sequences)", labelNames: model, buckets: BATCH_BUCKETS }),
    batchSequences: new Histogram({ ...m, name: "edgellm_decode_batch_sequences", help: "Sequences served per decode round", labelNames: model, buckets: BATCH_BUCKETS }),
    roundNativeCalls: new Histogram({ ...m, name: "edgellm_decode_native_calls", help: "Native addon calls per decode round (1: decode and every sequence's sampling in one call)", labelNames: model, buckets: BATCH_BUCKETS }),
    modelLoad: new Histogram({ ...m, name: "edgellm_model_load_seconds", help: "Model load time", labelNames: model, buckets: LATENCY_BUCKETS }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Every finish reason a request can end with; each gets its series when a model loads. */
const FINISH_REASONS = ["stop", "length", "tool_calls"] as const;

/**
 * Creates every per-model series at 0 when a model loads, as vLLM does, so `rate()` and alerts
 * see the series from the first scrape instead of after the first request.
 */
export function initModelSeries(metrics: Metrics, modelId: string): void {
  const labels = { model: modelId };
  for (const metric of Object.values(metrics)) {
    const ownLabels = metric === metrics.requestsFailed || metric === metrics.requestsFinished || metric === metrics.fallbackSwaps;
    if (metric instanceof Counter && !ownLabels) (metric as Counter<"model">).inc(labels, 0);
    else if (metric instanceof Histogram) (metric as Histogram<"model">).zero(labels);
  }
  for (const finish_reason of FINISH_REASONS) metrics.requestsFinished.inc({ ...labels, finish_reason }, 0);
}
