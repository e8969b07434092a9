/**
 * n > 1 is one engine request, in llama-server's parent and child shape: through the openai SDK,
 * n = 3 renders and evaluates the prompt once (the first choice) and forks it into the other two,
 * in both KV pool modes. Prefix reuse across requests is off, so only the fork can share the
 * prompt: three independent requests would evaluate it three times.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { engineIdle, engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { scrape, delta } from "../helpers/prometheus.js";

const SCRIPT = "Three choices share one prompt.";
const SYSTEM = "You are a careful assistant. " + Array.from({ length: 60 }, (_, i) => `Rule ${i}: answer briefly.`).join(" ");
const messages = [
  { role: "system" as const, content: SYSTEM },
  { role: "user" as const, content: "three answers please" },
];
const MAX_TOKENS = 12;
const PAGE = 16;

describe.each(["unified", "per-sequence"] as const)("n = 3 on the %s KV pool", (kvPool) => {
  let server: TestServer;
  let client: OpenAI;
  const m = () => `model="${server.modelId}"`;
  /** Tokens the engine evaluated (all decode rounds) between two scrapes. */
  const evaluated = (before: Map<string, number>, after: Map<string, number>) => delta(before, after, `edgellm_decode_batch_tokens_sum{${m()}}`);
  /** The prompt once, under one page per child (the tail the fork leaves), then each choice's tokens. */
  const expectPromptOnce = (tokens: number, prompt: number) => {
    expect(tokens).toBeGreaterThanOrEqual(prompt + 3 * (MAX_TOKENS - 1));
    expect(tokens).toBeLessThan(prompt + 2 * PAGE + 3 * MAX_TOKENS + 1);
  };

  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT], { loop: true }), {
      "model.kvPool": kvPool,
      "model.sequences": 3,
      "model.contextSize": 2048,
      "model.prefillChunk": 64,
      "model.prefixReuse": false,
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("JSON: three choices from one prompt evaluation, the prompt counted once", async () => {
    expect((await engineModel(server)).kv_pool).toBe(kvPool);
    const before = await scrape(server.url);
    const r = await client.chat.completions.create({ model: server.modelId, n: 3, max_tokens: MAX_TOKENS, messages });
    const after = await scrape(server.url);
    const prompt = r.usage!.prompt_tokens;
    expect(prompt).toBeGreaterThan(400);
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.choices.map((c) => c.message.content)).toEqual(Array(3).fill(r.choices[0]!.message.content));
    expect(r.choices[0]!.message.content!.startsWith(SCRIPT.slice(0, 10))).toBe(true);
    expect(r.usage!.completion_tokens).toBe(3 * MAX_TOKENS);
    expect(delta(before, after, `edgellm_prompt_tokens_total{${m()}}`)).toBe(prompt);
    expectPromptOnce(evaluated(before, after), prompt);
    // The two children were served their prompt pages from the first choice's cache.
    expect(delta(before, after, `edgellm_prefix_cache_hit_tokens_total{${m()}}`)).toBe(2 * (Math.floor((prompt - 1) / PAGE) * PAGE));
    await engineIdle(server);
  });

  it("SSE: every choice streams under its index from one prompt evaluation, usage once", async () => {
    const before = await scrape(server.url);
    const stream = await client.chat.completions.create({
      model: server.modelId,
      n: 3,
      max_tokens: MAX_TOKENS,
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", "", ""];
    const finish: Array<string | null> = [null, null, null];
    const usages: OpenAI.CompletionUsage[] = [];
    for await (const chunk of stream) {
      if (chunk.usage) usages.push(chunk.usage);
      for (const c of chunk.choices) {
        text[c.index] += c.delta.content ?? "";
        if (c.finish_reason) finish[c.index] = c.finish_reason;
      }
    }
    const after = await scrape(server.url);
    expect(finish).toEqual(["length", "length", "length"]);
    expect(text.every((t) => t.length > 0 && t === text[0])).toBe(true);
    expect(usages).toHaveLength(1);
    const prompt = usages[0]!.prompt_tokens;
    expect(usages[0]!.completion_tokens).toBe(3 * MAX_TOKENS);
    expectPromptOnce(evaluated(before, after), prompt);
    await engineIdle(server);
  });

  it("a client that goes away cancels all three choices", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: server.modelId, n: 3, max_tokens: 1500, messages, stream: true },
      { signal: controller.signal },
    );
    let got = 0;
    try {
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content && ++got === 3) controller.abort();
    } catch (err) {
      expect((err as Error).name).toMatch(/Abort/);
    }
    expect(got).toBe(3);
    // Long before 3 × 1500 tokens would be done, every slot is free again.
    await engineIdle(server);
    const status = await engineModel(server);
    expect(status.running).toBe(0);
    expect(Math.max(...status.slots.map((s) => s.cachedTokens))).toBeLessThan(1200);
  });
});
