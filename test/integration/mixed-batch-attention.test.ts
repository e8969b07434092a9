/**
 * Attention in a batch that mixes sequences: a stream's decode token in the same llama batch as
 * another request's prompt (over 64 tokens, so ggml's CPU flash attention takes its tiled path,
 * where the unified-KV addon computes the stream's sparse tiles row by row). The stream's
 * tokens and log-probabilities must be the ones it gets alone.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Over 128 prompt tokens: the stream's cells fill whole 64-cell tiles that no prompt row sees. */
const STREAM_PROMPT = "Stream: " + Array.from({ length: 60 }, (_, i) => `item ${i}`).join(", ");
/** Over 64 prompt tokens: one chunk of them takes the tiled path. */
const PROMPT = "Prompt: " + Array.from({ length: 50 }, (_, i) => `fact ${i}`).join("; ");

interface Step {
  token: string;
  logprob: number;
  top: Array<{ token: string; logprob: number }>;
}

describe("attention in a batch that mixes a prompt chunk with another stream's decode token", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await tinyModel(), { "model.sequences": 3, "model.contextSize": 2048, "model.prefixReuse": false });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  /** Streams STREAM_PROMPT's greedy answer; `onFirst` runs when its first token arrives. */
  async function stream(onFirst?: () => void): Promise<{ steps: Step[]; endedAt: number }> {
    const s = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: STREAM_PROMPT }],
      max_tokens: 200,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      stream: true,
    });
    const steps: Step[] = [];
    for await (const chunk of s) {
      for (const e of chunk.choices[0]?.logprobs?.content ?? []) {
        steps.push({ token: e.token, logprob: e.logprob, top: e.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })) });
        if (steps.length === 1) onFirst?.();
      }
    }
    return { steps, endedAt: performance.now() };
  }

  it("gives the stream the tokens and log-probabilities it gets alone", async () => {
    const alone = await stream();
    expect(alone.steps.length).toBeGreaterThan(20);

    let prompt: Promise<number> | undefined;
    const mixed = await stream(() => {
      prompt = client.chat.completions
        .create({ model: server.modelId, messages: [{ role: "user", content: PROMPT }], max_tokens: 1 })
        .then((r) => {
          expect(r.usage!.prompt_tokens).toBeGreaterThan(64);
          return performance.now();
        });
    });
    // The prompt was evaluated while the stream decoded, so in rounds with its tokens.
    expect(await prompt!).toBeLessThan(mixed.endedAt);

    // The stream's steps after the prompt's rounds differ from the lone run's by rounding only
    // (another summation order), which may swap two candidates whose log-probabilities tie: the
    // ranks' values must match, and the streams may part only at such a tie.
    let compared = 0;
    for (const [i, step] of mixed.steps.entries()) {
      const ref = alone.steps[i]!;
      step.top.forEach((t, k) => expect(Math.abs(t.logprob - ref.top[k]!.logprob)).toBeLessThan(0.02));
      compared++;
      if (step.token !== ref.token) {
        const tie = ref.top.find((t) => t.token === step.token);
        expect(tie, `step ${i}: ${JSON.stringify(step.token)} is not among ${JSON.stringify(ref.top)}`).toBeDefined();
        expect(Math.abs(tie!.logprob - ref.logprob)).toBeLessThan(0.02);
        break;
      }
      expect(Math.abs(step.logprob - ref.logprob)).toBeLessThan(0.02);
    }
    expect(compared).toBeGreaterThan(1);
  });
});
