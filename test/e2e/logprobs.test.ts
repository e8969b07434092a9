/**
 * logprobs end to end with the `openai` SDK: chat's `logprobs` / `top_logprobs` (OpenAI's
 * ChoiceLogprobs shape, answer tokens only) and the completions' legacy shape, on a scripted
 * model (greedy, known tokens) and on a random-weight model (a spread-out distribution, where
 * raw log-probabilities and the sampling distribution differ).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { scriptedModel, tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { thinkingScript } from "../helpers/scripts.js";

const THOUGHT = "Thinking about the answer.";
const ANSWER = "Logprobs are real: Grüße!";
const SCRIPT = thinkingScript(THOUGHT, ANSWER);

type TokenLogprob = OpenAI.Chat.Completions.ChatCompletionTokenLogprob;

const utf8 = (s: string) => [...Buffer.from(s, "utf8")];

/** Greedy on a scripted model: every token is certain, and it is its own top alternative. */
function expectCertain(entries: TokenLogprob[], top: number): void {
  for (const e of entries) {
    expect(e.logprob).toBeLessThanOrEqual(0);
    expect(e.logprob).toBeGreaterThan(-1e-3);
    expect(e.bytes).toEqual(utf8(e.token));
    expect(e.top_logprobs).toHaveLength(top);
    if (top > 0) expect(e.top_logprobs[0]).toEqual({ token: e.token, logprob: e.logprob, bytes: e.bytes });
    const values = e.top_logprobs.map((t) => t.logprob);
    expect(values).toEqual([...values].sort((a, b) => b - a));
    for (const t of e.top_logprobs) expect(t.bytes).toEqual(utf8(t.token));
  }
}

describe("logprobs on a scripted thinking model", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(SCRIPT));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const chat = (extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming>) =>
    client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], ...extra });

  it("chat: one entry per answer token, never the think block; tokens and bytes concatenate to the content", async () => {
    const res = await chat({ logprobs: true, top_logprobs: 3 });
    const choice = res.choices[0]!;
    expect((choice.message as { reasoning_content?: string }).reasoning_content).toBe(THOUGHT);
    expect(choice.message.content).toBe(ANSWER);
    const content = choice.logprobs!.content!;
    expect(choice.logprobs!.refusal).toBeNull();
    expect(content.map((e) => e.token).join("")).toBe(ANSWER);
    expect(content.flatMap((e) => e.bytes)).toEqual(utf8(ANSWER));
    expect(content.length).toBeGreaterThan(5);
    expectCertain(content, 3);
  });

  it("chat with thinking off, logprobs without top_logprobs: empty alternatives", async () => {
    const res = await chat({ logprobs: true, chat_template_kwargs: { enable_thinking: false } } as object);
    const content = res.choices[0]!.logprobs!.content!;
    expect(content.map((e) => e.token).join("")).toBe(ANSWER);
    expectCertain(content, 0);
  });

  it("chat streaming: each chunk carries the logprobs of its tokens, the same as the JSON answer", async () => {
    const whole = (await chat({ logprobs: true, top_logprobs: 2 })).choices[0]!.logprobs!.content!;
    const stream = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "hi" }],
      logprobs: true,
      top_logprobs: 2,
      stream: true,
    });
    let content = "";
    const streamed: TokenLogprob[] = [];
    for await (const c of stream) {
      content += c.choices[0]?.delta.content ?? "";
      streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
      // Logprobs never run ahead of the content sent so far.
      expect(content.startsWith(streamed.map((e) => e.token).join(""))).toBe(true);
    }
    expect(content).toBe(ANSWER);
    expect(streamed).toEqual(whole);
  });

  it("chat under a grammar: the forced tokens are reported with their raw log-probability, far from certain", async () => {
    const res = await chat({
      logprobs: true,
      top_logprobs: 1,
      max_tokens: 60,
      chat_template_kwargs: { enable_thinking: false },
      response_format: { type: "json_schema", json_schema: { name: "n", strict: true, schema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] } } },
    } as object);
    const { message, logprobs } = res.choices[0]!;
    expect(JSON.parse(message.content!)).toHaveProperty("n");
    const content = logprobs!.content!;
    expect(content.map((e) => e.token).join("")).toBe(message.content);
    // The model wanted to write the script; the grammar made it write JSON instead.
    expect(Math.min(...content.map((e) => e.logprob))).toBeLessThan(-5);
    for (const e of content) expect(e.logprob).toBeLessThanOrEqual(e.top_logprobs[0]!.logprob);
  });

  it("chat without logprobs answers logprobs: null; top_logprobs needs logprobs: true and is at most 20", async () => {
    expect((await chat({})).choices[0]!.logprobs).toBeNull();
    for (const [extra, param] of [
      [{ top_logprobs: 2 }, "top_logprobs"],
      [{ logprobs: false, top_logprobs: 2 }, "top_logprobs"],
      [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
      [{ logprobs: "yes" }, "logprobs"],
    ] as const) {
      const err = await chat(extra as object).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    }
  });

  it("completions: the legacy shape, each top_logprobs map holding the sampled token, offsets into the text", async () => {
    const res = await client.completions.create({ model: server.modelId, prompt: "The answer is</think>\n\n", logprobs: 2, max_tokens: 40 });
    const { text, logprobs } = res.choices[0]!;
    expect(text).toBe(ANSWER);
    const lp = logprobs!;
    expect(lp.tokens!.join("")).toBe(ANSWER);
    expect(lp.token_logprobs!.every((v) => v <= 0 && v > -1e-3)).toBe(true);
    let offset = 0;
    lp.tokens!.forEach((token, i) => {
      expect(lp.text_offset![i]).toBe(offset);
      offset += token.length;
      const top = lp.top_logprobs![i]!;
      expect(Object.keys(top)).toHaveLength(2);
      expect(top[token]).toBe(lp.token_logprobs![i]);
    });
  });

  it("completions streaming: chunks' tokens and offsets continue each other", async () => {
    const stream = await client.completions.create({ model: server.modelId, prompt: "The answer is</think>\n\n", logprobs: 0, stream: true, max_tokens: 40 });
    let text = "";
    const tokens: string[] = [];
    const offsets: number[] = [];
    for await (const c of stream) {
      const choice = c.choices[0];
      if (!choice) continue;
      text += choice.text;
      tokens.push(...(choice.logprobs?.tokens ?? []));
      offsets.push(...(choice.logprobs?.text_offset ?? []));
      for (const top of choice.logprobs?.top_logprobs ?? []) expect(Object.keys(top)).toHaveLength(1);
    }
    expect(text).toBe(ANSWER);
    expect(tokens.join("")).toBe(ANSWER);
    expect(offsets).toEqual(tokens.map((_, i) => tokens.slice(0, i).join("").length));
  });
});

describe("logprobs on a random-weight model: the raw distribution, not the sampling one", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await tinyModel());
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const complete = (extra: Record<string, unknown>) =>
    client.completions.create({ model: server.modelId, prompt: "The weather today is", max_tokens: 4, logprobs: 5, ...extra });

  it("is the same whatever the temperature and top_k, and spread over many tokens", async () => {
    // top_k = 1 samples the most likely token at any temperature: the sampling distribution is
    // certain there, the model's own distribution is not.
    const greedy = (await complete({ temperature: 0 })).choices[0]!;
    const hot = (await complete({ temperature: 1.5, top_k: 1 })).choices[0]!;
    expect(hot.text).toBe(greedy.text);
    const [a, b] = [greedy.logprobs!, hot.logprobs!];
    expect(b.tokens).toEqual(a.tokens);
    b.token_logprobs!.forEach((v, i) => expect(v).toBeCloseTo(a.token_logprobs![i]!, 4));
    for (const [i, top] of a.top_logprobs!.entries()) {
      const values = Object.values(top);
      expect(values.length).toBeGreaterThanOrEqual(4);
      // The sampled (most likely) token is the largest, and five tokens hold less than all the mass.
      expect(Math.max(...values)).toBe(a.token_logprobs![i]);
      expect(values.reduce((sum, v) => sum + Math.exp(v), 0)).toBeLessThan(0.999);
    }
    expect(Math.min(...a.token_logprobs!)).toBeLessThan(-0.01);
  });
});
