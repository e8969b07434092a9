/**
 * POST /v1/completions end to end: the real server and worker on a scripted model (raw prompts,
 * no chat template), driven by the `openai` SDK, plain HTTP and LangChain's `OpenAI` LLM class.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { OpenAI as LangChainOpenAI } from "@langchain/openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { postSse } from "../helpers/sse.js";
import { delta, scrape } from "../helpers/prometheus.js";

/**
 * A prompt whose last token is "\n" on its own (not merged into "?\n" or ":\n") triggers the
 * script; it ends with <|im_end|> well within 16 tokens.
 */
const SCRIPT = "Raw prompts get this exact completion.";

describe("text completions with the openai SDK on a scripted model", () => {
  let server: TestServer;
  let client: OpenAI;
  let scriptTokens: number[];
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
    scriptTokens = await tokenize(SCRIPT);
  });
  afterAll(() => server?.stop());

  const tokenize = async (content: string): Promise<number[]> => {
    const res = await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ content }) });
    return ((await res.json()) as { tokens: number[] }).tokens;
  };
  const post = async (body: unknown) => {
    const res = await fetch(`${server.baseURL}/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } } };
  };

  it("completes a string prompt as is, without a chat template, in OpenAI's shape", async () => {
    const res = await client.completions.create({ model: server.modelId, prompt: "Question: what do raw prompts get\n" });
    expect(res.object).toBe("text_completion");
    expect(res.id).toMatch(/^cmpl-/);
    expect(res.model).toBe(server.modelId);
    expect(res.choices).toEqual([{ index: 0, text: SCRIPT, logprobs: null, finish_reason: "stop" }]);
    expect(res.usage!.prompt_tokens).toBe((await tokenize("Question: what do raw prompts get\n")).length);
    expect(res.usage!.completion_tokens).toBe(scriptTokens.length);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
  });

  it("a prompt that does not end the way the script starts gets the model's end token: no chat template was added", async () => {
    const res = await client.completions.create({ model: server.modelId, prompt: "no newline at the end" });
    expect(res.choices[0]).toMatchObject({ text: "", finish_reason: "stop" });
  });

  it("an array of prompts with n = 2: choice index = prompt index × n + i, usage and metrics count every prompt once", async () => {
    const prompts = ["First prompt\n", "Second, longer prompt here\n"];
    const before = await scrape(server.url);
    const res = await client.completions.create({ model: server.modelId, prompt: prompts, n: 2, temperature: 0.8, seed: 7 });
    const after = await scrape(server.url);
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    for (const c of res.choices) expect(c).toMatchObject({ text: SCRIPT, finish_reason: "stop" });
    const promptTokens = (await tokenize(prompts[0]!)).length + (await tokenize(prompts[1]!)).length;
    expect(res.usage!.prompt_tokens).toBe(promptTokens);
    expect(res.usage!.completion_tokens).toBe(4 * scriptTokens.length);
    const m = `model="${server.modelId}"`;
    expect(delta(before, after, `edgellm_prompt_tokens_total{${m}}`)).toBe(promptTokens);
    expect(delta(before, after, `edgellm_generation_tokens_total{${m}}`)).toBe(4 * scriptTokens.length);
  });

  it("a token-id prompt continues the script from where the ids leave it; so does an array of them", async () => {
    const cut = 3;
    const rest = SCRIPT.slice((await detokenize(scriptTokens.slice(0, cut))).length);
    const single = await client.completions.create({ model: server.modelId, prompt: scriptTokens.slice(0, cut) });
    expect(single.choices[0]!.text).toBe(rest);
    expect(single.usage!.prompt_tokens).toBe(cut);
    const batch = await client.completions.create({ model: server.modelId, prompt: [scriptTokens.slice(0, cut), await tokenize("go\n")] });
    expect(batch.choices.map((c) => c.text)).toEqual([rest, SCRIPT]);
  });

  const detokenize = async (tokens: number[]): Promise<string> => {
    const res = await fetch(`${server.url}/detokenize`, { method: "POST", body: JSON.stringify({ tokens }) });
    return ((await res.json()) as { content: string }).content;
  };

  it("stop strings cut the text, max_tokens ends with length (the default is 16 tokens)", async () => {
    const stopped = await client.completions.create({ model: server.modelId, prompt: "x\n", stop: ["exact"] });
    expect(stopped.choices[0]).toMatchObject({ text: "Raw prompts get this ", finish_reason: "stop" });
    const short = await client.completions.create({ model: server.modelId, prompt: "x\n", max_tokens: 3 });
    expect(short.choices[0]!.finish_reason).toBe("length");
    expect(short.usage!.completion_tokens).toBe(3);
    expect(short.choices[0]!.text).toBe(await detokenize(scriptTokens.slice(0, 3)));
  });

  it("echo puts the prompt before the completion, for text and for token ids", async () => {
    const text = await client.completions.create({ model: server.modelId, prompt: "Echo me\n", echo: true });
    expect(text.choices[0]!.text).toBe(`Echo me\n${SCRIPT}`);
    const ids = await client.completions.create({ model: server.modelId, prompt: await tokenize("Ids\n"), echo: true });
    expect(ids.choices[0]!.text).toBe(`Ids\n${SCRIPT}`);
  });

  it("streams text_completion chunks: echo first, the text, one finish chunk per choice, then usage", async () => {
    const stream = await client.completions.create({
      model: server.modelId,
      prompt: ["a\n", "b\n"],
      echo: true,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completions.Completion[] = [];
    for await (const c of stream) chunks.push(c);
    expect(new Set(chunks.map((c) => c.object))).toEqual(new Set(["text_completion"]));
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    const textOf = (i: number) => chunks.flatMap((c) => c.choices.filter((x) => x.index === i).map((x) => x.text)).join("");
    expect(textOf(0)).toBe(`a\n${SCRIPT}`);
    expect(textOf(1)).toBe(`b\n${SCRIPT}`);
    expect(chunks.filter((c) => c.choices[0]?.text).length).toBeGreaterThan(4);
    const finishes = chunks.flatMap((c) => c.choices.filter((x) => x.finish_reason).map((x) => [x.index, x.finish_reason]));
    expect(finishes.sort()).toEqual([[0, "stop"], [1, "stop"]]);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(2 * scriptTokens.length);
    expect(last.usage!.prompt_tokens).toBe((await tokenize("a\n")).length + (await tokenize("b\n")).length);
  });

  it("the raw stream ends with data: [DONE]", async () => {
    const sse = await postSse(`${server.baseURL}/completions`, { prompt: "q\n", stream: true });
    expect(sse.status).toBe(200);
    expect(sse.contentType).toMatch(/text\/event-stream/);
    expect(sse.data.at(-1)).toBe("[DONE]");
    const text = sse.data.slice(0, -1).map((d) => (JSON.parse(d) as { choices: Array<{ text: string }> }).choices[0]!.text).join("");
    expect(text).toBe(SCRIPT);
  });

  it("rejects what it does not do, and bad prompts, with OpenAI errors before any stream starts", async () => {
    const cases: Array<[unknown, number, string, string]> = [
      [{ prompt: "x", suffix: "after" }, 400, "suffix", "unsupported_parameter"],
      [{ prompt: "x", best_of: 2 }, 400, "best_of", "unsupported_parameter"],
      [{ prompt: "x", echo: true, logprobs: 1 }, 400, "echo", "unsupported_parameter"],
      [{ prompt: 5 }, 400, "prompt", "invalid_type"],
      [{ prompt: [] }, 400, "prompt", "invalid_value"],
      [{ prompt: [[1, 2], "mixed"] }, 400, "prompt", "invalid_type"],
      [{ prompt: "" }, 400, "prompt", "invalid_value"],
      [{ prompt: [1, 10_000_000] }, 400, "prompt", "invalid_token"],
      [{}, 400, "prompt", "missing_required_parameter"],
      [{ prompt: "x", logprobs: 6 }, 400, "logprobs", "invalid_value"],
      [{ prompt: ["a", "b", "c"], n: 3 }, 400, "prompt", "limit_exceeded"],
      [{ prompt: "x", max_tokens: 5000, stream: true }, 400, "prompt", "context_length_exceeded"],
      [{ prompt: "word ".repeat(1100) }, 400, "prompt", "context_length_exceeded"],
      [{ prompt: "x", model: "nope" }, 404, "model", "model_not_found"],
    ];
    for (const [body, status, param, code] of cases) {
      const res = await post(body);
      expect({ body, status: res.status, param: res.body.error.param, code: res.body.error.code }).toEqual({ body, status, param, code });
      expect(res.body.error.type).toMatch(/_error$/);
    }
    const tooLong = await post({ prompt: "x", max_tokens: 5000 });
    expect(tooLong.body.error.message).toMatch(/maximum context length is 1024 tokens.*in the prompt/);
    // Still serving after all of that.
    expect((await client.completions.create({ model: server.modelId, prompt: "ok\n" })).choices[0]!.text).toBe(SCRIPT);
  });

  it("LangChain's OpenAI LLM class invokes /v1/completions", async () => {
    const llm = new LangChainOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });
    expect(await llm.invoke("LangChain asks\n")).toBe(SCRIPT);
  });
});
