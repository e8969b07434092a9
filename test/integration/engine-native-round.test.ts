/**
 * One native call per round (issue 10), on the real server and engine: three concurrent
 * streams are decoded in rounds that serve all three sequences at once, and with the patched
 * addon (the unified-KV build) each round is exactly one native call, the decode and every
 * sequence's sampling together. The prebuilt addon (per-sequence KV) has no such call: there a
 * round is the decode plus one sampling call per sequence. Counted by the worker's RoundDecoder
 * and exported as edgellm_decode_native_calls / edgellm_decode_batch_sequences.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { scrape, delta } from "../helpers/prometheus.js";

const SCRIPT = "Every sequence of the round is decoded and sampled in one call to the addon.";

describe.each(["unified", "per-sequence"] as const)("decode rounds with the %s KV pool", (kvPool) => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]), { "model.kvPool": kvPool, "model.sequences": 3, "model.prefillChunk": 64 });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it(`serves the three streams in shared rounds, ${kvPool === "unified" ? "one native call each" : "a decode plus one sampling call per sequence"}`, async () => {
    expect((await engineModel(server)).kv_pool).toBe(kvPool);
    const m = `model="${server.modelId}"`;
    const before = await scrape(server.url);
    const results = await Promise.all(
      ["a", "b", "c"].map((q) =>
        client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: `question ${q}` }], logprobs: q === "b", top_logprobs: q === "b" ? 2 : undefined }),
      ),
    );
    const after = await scrape(server.url);
    for (const r of results) expect(r.choices[0]!.message.content).toBe(SCRIPT);
    const tokens = results.map((r) => r.usage!.completion_tokens);
    expect(Math.min(...tokens)).toBeGreaterThan(10);

    const rounds = delta(before, after, `edgellm_decode_batch_tokens_count{${m}}`);
    const calls = delta(before, after, `edgellm_decode_native_calls_sum{${m}}`);
    // Every round is counted once by the decoder.
    expect(delta(before, after, `edgellm_decode_native_calls_count{${m}}`)).toBe(rounds);
    expect(delta(before, after, `edgellm_decode_batch_sequences_count{${m}}`)).toBe(rounds);
    // Most tokens came from rounds that served all three sequences.
    const roundsOfThree = rounds - delta(before, after, `edgellm_decode_batch_sequences_bucket{le="2",${m}}`);
    expect(roundsOfThree).toBeGreaterThanOrEqual(Math.min(...tokens) / 2);
    // Every sequence a round served was stepped: tokens plus the prompt and end-of-generation steps.
    const served = delta(before, after, `edgellm_decode_batch_sequences_sum{${m}}`);
    expect(served).toBeGreaterThanOrEqual(tokens.reduce((a, b) => a + b, 0));
    if (kvPool === "unified") {
      expect(calls).toBe(rounds);
    } else {
      // The decode, one sampling call per sequence stepped, and a log-probability read per token of "b".
      expect(calls).toBeGreaterThanOrEqual(rounds + served);
    }
  });
});
