/**
 * The scheduler on the real engine: concurrent requests share decode rounds, long prompts are
 * prefilled in bounded chunks without changing the output, and a repeated prompt reuses the
 * slot's KV cache with identical output.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { scrape, delta } from "../helpers/prometheus.js";

const SCRIPT = "Batching works when every sequence advances in the same round.";
/** Over 500 prompt tokens. */
const LONG = "Background: " + Array.from({ length: 150 }, (_, i) => `fact ${i} is noted.`).join(" ");

/**
 * A short question and LONG at the same time: both answered with SCRIPT, LONG over 500 prompt
 * tokens. Returns the answers, the decode rounds they took and how many of those rounds
 * evaluated more than `bucket` tokens.
 */
async function shortBesideLong(server: TestServer, client: OpenAI, bucket: number) {
  const ask = (content: string) => client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content }] });
  const m = `model="${server.modelId}"`;
  const before = await scrape(server.url);
  const [a, b] = await Promise.all([ask("short one"), ask(LONG)]);
  const after = await scrape(server.url);
  expect(a.choices[0]!.message.content).toBe(SCRIPT);
  expect(b.choices[0]!.message.content).toBe(SCRIPT);
  expect(b.usage!.prompt_tokens).toBeGreaterThan(500);
  const rounds = delta(before, after, `edgellm_decode_batch_tokens_count{${m}}`);
  return { a, b, rounds, bigRounds: rounds - delta(before, after, `edgellm_decode_batch_tokens_bucket{le="${bucket}",${m}}`) };
}

describe("continuous batching on the real engine", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]), { "model.sequences": 3, "model.prefillChunk": 32, "model.batchSize": 64, "model.contextSize": 2048 });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const ask = (content: string) => client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content }] });
  const m = () => `model="${server.modelId}"`;

  it("runs concurrent requests in shared rounds: far fewer decode rounds than tokens", async () => {
    const before = await scrape(server.url);
    const results = await Promise.all(["a", "b", "c"].map((q) => ask(`question ${q}`)));
    const after = await scrape(server.url);
    for (const r of results) expect(r.choices[0]!.message.content).toBe(SCRIPT);
    const tokens = results.reduce((sum, r) => sum + r.usage!.completion_tokens, 0);
    const rounds = delta(before, after, `edgellm_decode_batch_tokens_count{${m()}}`);
    // Alone, each token (plus each EOG step) would need its own round.
    expect(rounds).toBeLessThan((tokens + 3) * 0.6);
  });

  it("requests with logprobs share the rounds too, and their log-probabilities match", async () => {
    const before = await scrape(server.url);
    const ask = (content: string) =>
      client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content }], logprobs: true, top_logprobs: 2 });
    const results = await Promise.all(["a", "b", "c"].map((q) => ask(`logprobs ${q}`)));
    const after = await scrape(server.url);
    for (const r of results) {
      expect(r.choices[0]!.message.content).toBe(SCRIPT);
      expect(r.choices[0]!.logprobs!.content!.map((e) => e.token).join("")).toBe(SCRIPT);
    }
    const tokens = results.reduce((sum, r) => sum + r.usage!.completion_tokens, 0);
    expect(delta(before, after, `edgellm_decode_batch_tokens_count{${m()}}`)).toBeLessThan((tokens + 3) * 0.6);
  });

  it("prefills a long prompt in chunks while another stream decodes, with the same answer", async () => {
    const { b, rounds, bigRounds } = await shortBesideLong(server, client, 64);
    // The prompts share one budget per round: 32 tokens while a stream decodes, the batch size
    // (64) while none does; so no round went over 64 tokens, and the long prompt took many rounds.
    expect(bigRounds).toBe(0);
    expect(rounds).toBeGreaterThanOrEqual(Math.ceil(b.usage!.prompt_tokens / 64));
  });

  it("reuses the KV cache of a repeated prompt and answers identically", async () => {
    const prompt = "Repeat after me: " + "the same long prefix ".repeat(20);
    const first = await ask(prompt);
    const second = await ask(prompt);
    expect(second.choices[0]!.message.content).toBe(first.choices[0]!.message.content);
    expect(second.usage!.prompt_tokens_details!.cached_tokens).toBe(second.usage!.prompt_tokens - 1);
  });
});

describe("prefillScheduling: together on the real engine", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]), {
      "model.sequences": 3,
      "model.prefillScheduling": "together",
      "model.batchSize": 64,
      "model.contextSize": 2048,
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("evaluates a long prompt in one round of several llama batches, beside a decoding stream, with the same answer", async () => {
    const { a, b, rounds, bigRounds } = await shortBesideLong(server, client, 512);
    // Up to 2,048 prompt tokens a round whether or not a stream decodes: the long prompt took one
    // round (decoded in 64-token batches), where first-come takes one per 32-64 tokens (above).
    expect(bigRounds).toBe(1);
    const tokens = a.usage!.completion_tokens + b.usage!.completion_tokens;
    expect(rounds).toBeLessThanOrEqual(tokens + 2);
  });
});
