/**
 * The paged KV cache on the real engine, in both pool modes: n > 1 and concurrent requests
 * with one system prompt evaluate it once (a prefix copied from another sequence, shared cells
 * in a unified pool), and in a unified pool a request preempted when the pool runs out resumes
 * with exactly the output it would have had alone.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { engineIdle, engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { scrape, delta } from "../helpers/prometheus.js";

const SCRIPT = "Paged caches share what they can.";
const rules = (n: number) => Array.from({ length: n }, (_, i) => `Rule ${i}: answer briefly.`).join(" ");
const SYSTEM = "You are a careful assistant. " + rules(60);
/** Held by no idle sequence when the test that uses it starts. */
const OTHER_SYSTEM = "You are a terse assistant. " + rules(50);

/** A server on the looping scripted model, with this test file's settings on top of the helper's. */
async function startKvServer(set: Record<string, unknown>): Promise<{ server: TestServer; client: OpenAI }> {
  const server = await startTestServer(await scriptedModel([SCRIPT], { loop: true }), set);
  return { server, client: new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 }) };
}

describe.each(["unified", "per-sequence"] as const)("KV pool %s on the real engine", (kvPool) => {
  let server: TestServer;
  let client: OpenAI;
  const m = () => `model="${server.modelId}"`;
  const evaluated = (before: Map<string, number>, after: Map<string, number>) => delta(before, after, `edgellm_decode_batch_tokens_sum{${m()}}`);

  beforeAll(async () => {
    ({ server, client } = await startKvServer({
      "model.kvPool": kvPool,
      "model.sequences": 3,
      "model.contextSize": 2048,
      // A full context per sequence in both modes (the default unified pool would be one context).
      "model.kvPoolTokens": 3 * 2048,
      "model.prefillChunk": 64,
    }));
  });
  afterAll(() => server?.stop());

  it(`runs with the ${kvPool} pool it was asked for`, async () => {
    const status = await engineModel(server);
    expect(status.kv_pool).toBe(kvPool);
    expect(status.kv.unified).toBe(kvPool === "unified");
    expect(status.kv.pageTokens).toBe(16);
    expect(status.kv.totalPages).toBe(kvPool === "unified" ? (3 * 2048) / 16 : 3 * (2048 / 16));
  });

  it("n = 3 evaluates the prompt once and copies it to the other two sequences", async () => {
    const before = await scrape(server.url);
    const r = await client.chat.completions.create({
      model: server.modelId,
      n: 3,
      max_tokens: 12,
      messages: [
        { role: "system", content: SYSTEM },
        { role: "user", content: "three answers please" },
      ],
    });
    const after = await scrape(server.url);
    const prompt = r.usage!.prompt_tokens;
    expect(prompt).toBeGreaterThan(400);
    expect(r.choices.map((c) => c.message.content)).toEqual(Array(3).fill(r.choices[0]!.message.content));
    expect(r.choices[0]!.message.content!.startsWith(SCRIPT.slice(0, 10))).toBe(true);
    // Once the prompt, then under one page per follower, then 12 tokens per choice (and no more).
    const tokens = evaluated(before, after);
    expect(tokens).toBeLessThan(prompt + 2 * 16 + 3 * 12 + 1);
    expect(tokens).toBeGreaterThanOrEqual(prompt);
    expect(delta(before, after, `edgellm_prefix_cache_hit_tokens_total{${m()}}`)).toBeGreaterThanOrEqual(2 * (prompt - 16));
    await engineIdle(server);
  });

  it("a request sharing a busy sequence's system prompt copies it and answers as if computed", async () => {
    const ask = (question: string, max_tokens: number) =>
      client.chat.completions.create({
        model: server.modelId,
        max_tokens,
        stream: true,
        stream_options: { include_usage: true },
        messages: [
          { role: "system", content: OTHER_SYSTEM },
          { role: "user", content: question },
        ],
      });
    // Reference: the second question asked alone on an engine whose caches hold other prompts.
    const alone = await client.chat.completions.create({
      model: server.modelId,
      max_tokens: 20,
      messages: [{ role: "user", content: "what is the second rule? " + "x ".repeat(300) }],
    });
    expect(alone.choices[0]!.message.content!.length).toBeGreaterThan(0);

    const first = await ask("what is the first rule?", 300);
    const reader = first[Symbol.asyncIterator]();
    await reader.next(); // the first request is decoding now
    const before = await scrape(server.url);
    let text = "";
    let cached = -1;
    let promptTokens = 0;
    for await (const chunk of await ask("what is the second rule?", 20)) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) {
        cached = chunk.usage.prompt_tokens_details?.cached_tokens ?? -1;
        promptTokens = chunk.usage.prompt_tokens;
      }
    }
    const after = await scrape(server.url);
    await reader.return?.();
    // The system prompt's full pages came from the busy sequence.
    expect(cached).toBeGreaterThanOrEqual(Math.floor((promptTokens - 16) / 16) * 16 - 16);
    expect(cached % 16).toBe(0);
    expect(delta(before, after, `edgellm_prefix_cache_hit_tokens_total{${m()}}`)).toBe(cached);
    // The scripted model answers the same whatever the question: the copied cells are right.
    expect(text).toBe(alone.choices[0]!.message.content);
    await engineIdle(server);
  });
});

describe("unified KV pool under pressure on the real engine", () => {
  let server: TestServer;
  let client: OpenAI;
  const m = () => `model="${server.modelId}"`;
  beforeAll(async () => {
    // A 320-token pool for two sequences that may each hold 320 tokens.
    ({ server, client } = await startKvServer({
      "model.kvPool": "unified",
      "model.sequences": 2,
      "model.contextSize": 320,
      "model.kvPoolTokens": 320,
    }));
  });
  afterAll(() => server?.stop());

  const ask = (content: string) =>
    client.chat.completions.create({ model: server.modelId, max_tokens: 250, messages: [{ role: "user", content }] });

  it("preempts the younger request when the pool runs out and resumes it with the same output", async () => {
    const [soloA, soloB] = [await ask("first"), await ask("second")];
    expect(soloA.usage!.completion_tokens).toBe(250);
    const before = await scrape(server.url);
    const [a, b] = await Promise.all([ask("first"), ask("second")]);
    const after = await scrape(server.url);
    expect(delta(before, after, `edgellm_preemptions_total{${m()}}`)).toBeGreaterThanOrEqual(1);
    expect(a.choices[0]!.message.content).toBe(soloA.choices[0]!.message.content);
    expect(b.choices[0]!.message.content).toBe(soloB.choices[0]!.message.content);
    expect(b.usage!.completion_tokens).toBe(250);
    const status = await engineModel(server);
    expect(status.kv.usedPages).toBeLessThanOrEqual(status.kv.totalPages);
  }, 120_000);
});

describe("eight 1k-token requests in an 8k unified pool", () => {
  let server: TestServer;
  let client: OpenAI;
  const m = () => `model="${server.modelId}"`;
  beforeAll(async () => {
    ({ server, client } = await startKvServer({
      "model.kvPool": "unified",
      "model.sequences": 8,
      "model.contextSize": 8192,
      "model.kvPoolTokens": 8192,
      "model.prefillChunk": 128,
    }));
  });
  afterAll(() => server?.stop());

  it("runs all eight at once without preemption, though each could grow to 8k", async () => {
    const status = await engineModel(server);
    expect(status.kv.totalPages).toBe(8192 / 16);
    const before = await scrape(server.url);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        client.chat.completions.create({
          model: server.modelId,
          max_tokens: 100,
          // Distinct from the first token on: nothing is shared.
          messages: [{ role: "user", content: `${i} ` + `item${i} `.repeat(440) }],
        }),
      ),
    );
    const after = await scrape(server.url);
    for (const r of results) {
      expect(r.usage!.prompt_tokens + r.usage!.completion_tokens).toBeGreaterThan(900);
      expect(r.usage!.prompt_tokens + r.usage!.completion_tokens).toBeLessThanOrEqual(1024);
      expect(r.usage!.completion_tokens).toBe(100);
    }
    expect(delta(before, after, `edgellm_preemptions_total{${m()}}`)).toBe(0);
    // All eight ran side by side: some round batched eight sequences.
    expect(delta(before, after, `edgellm_decode_batch_tokens_count{${m()}}`)).toBeLessThan(8 * 100);
  });
});
