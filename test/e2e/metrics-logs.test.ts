/**
 * Observability end to end: real requests (a normal one, a prefix hit, an error, a disconnect)
 * against the real server, then /metrics must have moved by exactly the expected amounts, and
 * the log must hold one summary line per request with no prompt text at info.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Writable } from "node:stream";
import pino from "pino";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { scrape, delta } from "../helpers/prometheus.js";

const SECRET_PROMPT = "please count for me, zebra-violet-42";
const lines: Array<Record<string, unknown>> = [];
const capture = new Writable({
  write(chunk, _enc, done) {
    for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
    done();
  },
});

describe("metrics and logs", () => {
  let server: TestServer;
  let client: OpenAI;
  let m: string;
  beforeAll(async () => {
    server = await startTestServer(
      await scriptedModel(["one two three four five six seven eight nine ten"], { loop: true }),
      { "model.sequences": 2 },
      pino({ level: "info" }, capture),
    );
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "sk-secret-key-123", maxRetries: 0 });
    m = `model="${server.modelId}"`;
  });
  afterAll(() => server?.stop());

  it("every per-model series exists at 0 from the first scrape, before any request", async () => {
    const first = await scrape(server.url);
    for (const name of [
      "edgellm_prompt_tokens_total",
      "edgellm_generation_tokens_total",
      "edgellm_prefix_cache_hit_tokens_total",
      "edgellm_client_disconnects_total",
      "edgellm_time_to_first_token_seconds_count",
      "edgellm_inter_token_latency_seconds_count",
      "edgellm_e2e_request_latency_seconds_bucket",
    ]) {
      const series = [...first.keys()].filter((k) => k.startsWith(`${name}{`) && k.includes(m));
      expect(series.length, name).toBeGreaterThan(0);
      for (const k of series) expect(first.get(k), k).toBe(0);
    }
    for (const reason of ["stop", "length", "tool_calls"]) {
      expect(first.get(`edgellm_requests_finished_total{${m},finish_reason="${reason}"}`), reason).toBe(0);
    }
  });

  it("counters and histograms move by exactly what the requests did", async () => {
    const before = await scrape(server.url);
    const ask = () => client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: SECRET_PROMPT }], max_tokens: 12 });
    const first = await ask();
    const second = await ask();
    const after = await scrape(server.url);
    const p = first.usage!.prompt_tokens;
    expect(first.usage!.completion_tokens).toBe(12);
    // The second request reuses the first one's KV cache for its shared prompt prefix.
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(p / 2);

    expect(delta(before, after, `edgellm_prompt_tokens_total{${m}}`)).toBe(2 * p);
    expect(delta(before, after, `edgellm_generation_tokens_total{${m}}`)).toBe(24);
    expect(delta(before, after, `edgellm_requests_finished_total{${m},finish_reason="length"}`)).toBe(2);
    expect(delta(before, after, `edgellm_prefix_cache_queried_tokens_total{${m}}`)).toBe(2 * p);
    expect(delta(before, after, `edgellm_prefix_cache_hit_tokens_total{${m}}`)).toBe(cached + first.usage!.prompt_tokens_details!.cached_tokens!);
    expect(delta(before, after, `edgellm_time_to_first_token_seconds_count{${m}}`)).toBe(2);
    expect(delta(before, after, `edgellm_e2e_request_latency_seconds_count{${m}}`)).toBe(2);
    expect(delta(before, after, `edgellm_inter_token_latency_seconds_count{${m}}`)).toBe(22);
    expect(delta(before, after, `edgellm_request_prompt_tokens_sum{${m}}`)).toBe(2 * p);
    expect(delta(before, after, `edgellm_request_generation_tokens_count{${m}}`)).toBe(2);
    expect(delta(before, after, `edgellm_request_queue_time_seconds_count{${m}}`)).toBe(2);
    // Each request: one prefill round plus 11 single-token rounds (the 12th token needs no decode).
    expect(delta(before, after, `edgellm_decode_batch_tokens_count{${m}}`)).toBeGreaterThanOrEqual(2 * 12);
    expect(after.get(`edgellm_sequences_total{${m}}`)).toBe(2);
    expect(after.get(`edgellm_num_requests_running{${m}}`)).toBe(0);
    expect(after.get("edgellm_models_loaded")).toBe(1);
    expect(after.get(`edgellm_kv_pages_used{${m}}`)).toBeGreaterThan(0);
    expect(after.get(`edgellm_model_load_seconds_count{${m}}`)).toBe(1);
    expect(after.has("process_resident_memory_bytes")).toBe(true);
  });

  it("an error is counted by its code", async () => {
    const before = await scrape(server.url);
    await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "x" }], temperature: 7 }).catch(() => undefined);
    await client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] }).catch(() => undefined);
    const after = await scrape(server.url);
    expect(delta(before, after, `edgellm_requests_failed_total{code="invalid_value"}`)).toBe(1);
    expect(delta(before, after, `edgellm_requests_failed_total{code="model_not_found"}`)).toBe(1);
  });

  it("a client disconnect is counted once and its generation is not counted as finished", async () => {
    const before = await scrape(server.url);
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: server.modelId, messages: [{ role: "user", content: "count" }], stream: true, max_tokens: 800 },
      { signal: controller.signal },
    );
    let n = 0;
    try {
      for await (const c of stream) if (c.choices[0]?.delta.content && ++n === 3) controller.abort();
    } catch {
      // the SDK reports the abort
    }
    let after = await scrape(server.url);
    for (let i = 0; i < 50 && delta(before, after, `edgellm_client_disconnects_total{${m}}`) === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await scrape(server.url);
    }
    expect(delta(before, after, `edgellm_client_disconnects_total{${m}}`)).toBe(1);
    expect(delta(before, after, `edgellm_requests_finished_total{${m},finish_reason="length"}`)).toBe(0);
  });

  it("logs one summary line per request with the counts, and never the prompt at info", async () => {
    lines.length = 0;
    const res = await client.chat.completions.create(
      { model: server.modelId, messages: [{ role: "user", content: SECRET_PROMPT }], max_tokens: 5 },
      { headers: { "x-request-id": "trace-abc-1" } },
    );
    await new Promise((r) => setTimeout(r, 50));
    const summaries = lines.filter((l) => l["msg"] === "request completed");
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      requestId: "trace-abc-1",
      model: server.modelId,
      promptTokens: res.usage!.prompt_tokens,
      completionTokens: 5,
      reasoningTokens: 0,
      cachedTokens: res.usage!.prompt_tokens_details!.cached_tokens,
      finishReason: "length",
      status: 200,
    });
    expect(typeof summaries[0]!["ttftMs"]).toBe("number");
    expect(typeof summaries[0]!["tokensPerSecond"]).toBe("number");
    const all = JSON.stringify(lines);
    expect(all).not.toContain("zebra-violet-42");
    expect(all).not.toContain("sk-secret-key-123");
  });
});
