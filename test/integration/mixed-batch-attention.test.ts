/**
 * Attention in a batch that mixes sequences: a stream's decode token in the same llama batch as
 * another request's prompt (over 64 tokens, so ggml's CPU flash attention takes its tiled path;
 * the unified-KV addon gives the decode token to the vector path and skips the tiles the prompt's
 * rows do not see from the mask's bits). The stream's tokens and log-probabilities must be the
 * ones it gets alone, and so must the prompt's first token's.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** Over 128 prompt tokens: the stream's cells fill whole 64-cell tiles that no prompt row sees. */
const STREAM_PROMPT = "Stream: " + Array.from({ length: 60 }, (_, i) => `item ${i}`).join(", ");
/** Over 64 prompt tokens: one chunk of them takes the tiled path. */
const PROMPT = "Prompt: " + Array.from({ length: 50 }, (_, i) => `fact ${i}`).join("; ");

/** The first token of PROMPT: its greedy token and top-3 log-probabilities. */
async function promptStep(client: OpenAI, model: string): Promise<Step> {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: PROMPT }],
    max_tokens: 1,
    temperature: 0,
    logprobs: true,
    top_logprobs: 3,
  });
  expect(r.usage!.prompt_tokens).toBeGreaterThan(64);
  return toStep(r.choices[0]!.logprobs!.content![0]!);
}

/** A step from a response's log-probability entry. */
function toStep(e: OpenAI.Chat.Completions.ChatCompletionTokenLogprob): Step {
  return { token: e.token, logprob: e.logprob, top: e.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })) };
}

/** Two evaluations of one step agree up to rounding: their top log-probabilities rank by rank. */
function expectSameRanks(step: Step, ref: Step): void {
  step.top.forEach((t, k) => expect(Math.abs(t.logprob - ref.top[k]!.logprob)).toBeLessThan(0.02));
}

/** The same greedy token, or one whose log-probability ties with it in `ref` (another summation order may swap them). */
function expectSameOrTied(step: Step, ref: Step, label = "the step"): boolean {
  if (step.token === ref.token) return true;
  const tie = ref.top.find((t) => t.token === step.token);
  expect(tie, `${label}: ${JSON.stringify(step.token)} is not among ${JSON.stringify(ref.top)}`).toBeDefined();
  expect(Math.abs(tie!.logprob - ref.logprob)).toBeLessThan(0.02);
  return false;
}

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
        steps.push(toStep(e));
        if (steps.length === 1) onFirst?.();
      }
    }
    return { steps, endedAt: performance.now() };
  }

  it("gives the stream and the prompt the tokens and log-probabilities they get alone", async () => {
    // First on the empty pool: the prompt's cells are all its rows can see.
    const promptAlone = await promptStep(client, server.modelId);
    const alone = await stream();
    expect(alone.steps.length).toBeGreaterThan(20);

    let prompt: Promise<{ step: Step; at: number }> | undefined;
    const mixed = await stream(() => {
      prompt = promptStep(client, server.modelId).then((step) => ({ step, at: performance.now() }));
    });
    const promptMixed = await prompt!;
    // The prompt was evaluated while the stream decoded, so in rounds with its tokens.
    expect(promptMixed.at).toBeLessThan(mixed.endedAt);
    // Its rows saw the same cells as on the empty pool, among tiles of the streams' cells.
    expectSameRanks(promptMixed.step, promptAlone);
    expectSameOrTied(promptMixed.step, promptAlone);

    // The stream's steps after the prompt's rounds differ from the lone run's by rounding only
    // (another summation order), which may swap two candidates whose log-probabilities tie: the
    // ranks' values must match, and the streams may part only at such a tie.
    let compared = 0;
    for (const [i, step] of mixed.steps.entries()) {
      const ref = alone.steps[i]!;
      expectSameRanks(step, ref);
      compared++;
      if (!expectSameOrTied(step, ref, `step ${i}`)) break;
      expect(Math.abs(step.logprob - ref.logprob)).toBeLessThan(0.02);
    }
    expect(compared).toBeGreaterThan(1);
  });
});
