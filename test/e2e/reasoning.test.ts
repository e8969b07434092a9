/**
 * Qwen3 thinking end to end on scripted models: every switch, the reasoning field and its
 * variants, the thinking budget the engine enforces, and the same through LangChain.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { Writable } from "node:stream";
import pino from "pino";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { AIMessageChunk, HumanMessage } from "@langchain/core/messages";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { collect } from "../helpers/chat.js";
import { ANSWER, ANSWER_TOKENS, PLAN, REASONING_TOKENS, THINKING_SCRIPT, THOUGHT } from "../helpers/scripts.js";

type Extra = Record<string, unknown>;
type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string; reasoning?: string };

describe("thinking on a scripted Qwen3 model", () => {
  let server: TestServer;
  let client: OpenAI;
  const logs: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const capture = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) logs.push(JSON.parse(line));
        done();
      },
    });
    server = await startTestServer(await scriptedModel(THINKING_SCRIPT), {}, pino({ level: "debug" }, capture));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const ask = async (extra: Extra = {}, content = "hi") => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content }], ...extra } as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);
    return { res, message: res.choices[0]!.message as Message };
  };
  const askStream = (extra: Extra = {}) =>
    client.chat.completions
      .create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true }, ...extra } as OpenAI.Chat.ChatCompletionCreateParamsStreaming)
      .then(collect);

  it("thinks by default: reasoning_content and content apart, reasoning tokens counted exactly", async () => {
    const { res, message } = await ask();
    expect(message.reasoning_content).toBe(THOUGHT);
    expect(message.content).toBe(ANSWER);
    expect(message).not.toHaveProperty("reasoning");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage!.completion_tokens).toBe(PLAN.tokens.length);
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(REASONING_TOKENS);
  });

  it("streams reasoning deltas first, then content, never both in one delta", async () => {
    const out = await askStream();
    expect(out.reasoning).toBe(THOUGHT);
    expect(out.content).toBe(ANSWER);
    const kinds = out.chunks.map((c) => c.choices[0]?.delta as { reasoning_content?: string; content?: string } | undefined);
    const lastReasoning = kinds.findLastIndex((d) => d?.reasoning_content);
    const firstContent = kinds.findIndex((d) => d?.content);
    expect(lastReasoning).toBeGreaterThan(0);
    expect(firstContent).toBeGreaterThan(lastReasoning);
    expect(kinds.filter((d) => d?.reasoning_content && d.content)).toEqual([]);
    expect(out.usage!.completion_tokens_details!.reasoning_tokens).toBe(REASONING_TOKENS);
  });

  it.each([
    ["top-level enable_thinking", { enable_thinking: false }],
    ["chat_template_kwargs.enable_thinking", { chat_template_kwargs: { enable_thinking: false } }],
    ["reasoning_effort none", { reasoning_effort: "none" }],
    ["reasoning.effort none", { reasoning: { effort: "none" } }],
  ])("%s switches thinking off: content only, never null, no reasoning tokens", async (_name, extra) => {
    const { res, message } = await ask(extra);
    expect(message.content).toBe(ANSWER);
    expect(message).not.toHaveProperty("reasoning_content");
    expect(res.usage!.completion_tokens).toBe(ANSWER_TOKENS);
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(0);
  });

  it.each([
    ["enable_thinking", { enable_thinking: true }],
    ["chat_template_kwargs", { chat_template_kwargs: { enable_thinking: true } }],
    ["reasoning_effort", { reasoning_effort: "low" }],
  ])("%s can switch it on explicitly", async (_name, extra) => {
    const { message } = await ask(extra);
    expect(message.reasoning_content).toBe(THOUGHT);
    expect(message.content).toBe(ANSWER);
  });

  it("chat_template_kwargs wins over the other switches, as llama.cpp and vLLM read it", async () => {
    const { message } = await ask({ chat_template_kwargs: { enable_thinking: true }, enable_thinking: false, reasoning_effort: "none" });
    expect(message.reasoning_content).toBe(THOUGHT);
  });

  it("streams thinking-off answers as content only", async () => {
    const out = await askStream({ enable_thinking: false });
    expect(out.reasoning).toBe("");
    expect(out.content).toBe(ANSWER);
  });

  it("rejects a non-boolean enable_thinking before generating", async () => {
    const err = await ask({ chat_template_kwargs: { enable_thinking: "false" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("chat_template_kwargs.enable_thinking");
  });

  it.each([["return_reasoning"], ["include_reasoning"]])("%s: false withholds the reasoning but still counts it", async (field) => {
    const { res, message } = await ask({ [field]: false });
    expect(message).not.toHaveProperty("reasoning_content");
    expect(message.content).toBe(ANSWER);
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(REASONING_TOKENS);
    const out = await askStream({ [field]: false });
    expect(out.reasoning).toBe("");
    expect(out.content).toBe(ANSWER);
  });

  it("reasoning_format inline keeps the think block inside content", async () => {
    const inline = `<think>\n${THOUGHT}\n</think>\n\n${ANSWER}`;
    const { res, message } = await ask({ reasoning_format: "inline" });
    expect(message.content).toBe(inline);
    expect(message).not.toHaveProperty("reasoning_content");
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(REASONING_TOKENS);
    const out = await askStream({ reasoning_format: "inline" });
    expect(out.content).toBe(inline);
    expect(out.reasoning).toBe("");
  });

  it.each([["thinking_budget"], ["thinking_budget_tokens"], ["thinking_token_budget"]])(
    "%s: the engine closes the thought after the budget and the answer follows",
    async (field) => {
      const budget = 4;
      const { res, message } = await ask({ [field]: budget });
      expect(message.reasoning_content!.length).toBeGreaterThan(0);
      expect(THOUGHT.startsWith(message.reasoning_content!)).toBe(true);
      expect(message.reasoning_content!.length).toBeLessThan(THOUGHT.length);
      expect(message.content).toBe(ANSWER);
      // <think>, the budgeted thought, then the injected "\n</think>\n\n" in place of the next sampled token.
      expect(res.usage!.completion_tokens).toBe(1 + budget + 3 + ANSWER_TOKENS);
      expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(1 + budget + 2);
    },
  );

  it("applies the budget while streaming too", async () => {
    const out = await askStream({ thinking_budget: 3 });
    expect(out.reasoning.length).toBeGreaterThan(0);
    expect(THOUGHT.startsWith(out.reasoning)).toBe(true);
    expect(out.reasoning.length).toBeLessThan(THOUGHT.length);
    expect(out.content).toBe(ANSWER);
    expect(out.usage!.completion_tokens).toBe(1 + 3 + 3 + ANSWER_TOKENS);
  });

  it("a budget larger than the thought changes nothing", async () => {
    const { message } = await ask({ thinking_budget: 500 });
    expect(message.reasoning_content).toBe(THOUGHT);
    expect(message.content).toBe(ANSWER);
  });

  it("accepts reasoning from earlier assistant turns under either name", async () => {
    for (const field of ["reasoning_content", "reasoning"]) {
      const res = await client.chat.completions.create({
        model: server.modelId,
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: ANSWER, [field]: THOUGHT } as OpenAI.Chat.ChatCompletionAssistantMessageParam,
          { role: "user", content: "hi again" },
        ],
      });
      expect(res.choices[0]!.message.content).toBe(ANSWER);
    }
  });

  it("logs the reasoning trace at debug with the request id, never at info", async () => {
    logs.length = 0;
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }] }).withResponse();
    const requestId = res.response.headers.get("x-request-id");
    const traces = logs.filter((l) => l["msg"] === "reasoning trace");
    expect(traces).toHaveLength(1);
    expect(traces[0]).toMatchObject({ level: 20, requestId, reasoning: THOUGHT });
    expect(logs.filter((l) => (l["level"] as number) >= 30 && JSON.stringify(l).includes("friendly greeting"))).toEqual([]);
  });

  describe("LangChain ChatOpenAI", () => {
    const chat = (fields: ConstructorParameters<typeof ChatOpenAI>[0] = {}) =>
      new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0, ...fields });

    it("invoke puts the reasoning in additional_kwargs.reasoning_content", async () => {
      const msg = await chat().invoke([new HumanMessage("hi")]);
      expect(msg.content).toBe(ANSWER);
      expect(msg.additional_kwargs.reasoning_content).toBe(THOUGHT);
      expect(msg.usage_metadata?.output_token_details?.reasoning).toBe(REASONING_TOKENS);
    });

    it("stream accumulates reasoning_content and content separately", async () => {
      let merged: AIMessageChunk | undefined;
      for await (const c of await chat().stream("hi")) merged = merged ? merged.concat(c) : c;
      expect(merged!.content).toBe(ANSWER);
      expect(merged!.additional_kwargs.reasoning_content).toBe(THOUGHT);
    });

    it("modelKwargs carry the switches (extra_body in Python)", async () => {
      const off = await chat({ modelKwargs: { chat_template_kwargs: { enable_thinking: false } } }).invoke("hi");
      expect(off.content).toBe(ANSWER);
      expect(off.additional_kwargs.reasoning_content).toBeUndefined();
      const budgeted = await chat({ modelKwargs: { enable_thinking: true, thinking_budget: 2 } }).invoke("hi");
      expect(budgeted.content).toBe(ANSWER);
      expect(THOUGHT.startsWith(budgeted.additional_kwargs.reasoning_content as string)).toBe(true);
    });
  });
});

const SOFT_ANSWER = "Sure, answering right away.";

describe("the /no_think soft switch on a scripted Qwen3 model", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    // What Qwen3 emits after /no_think: an empty think block, then the answer.
    server = await startTestServer(await scriptedModel([{ token: "<think>" }, "\n\n", { token: "</think>" }, `\n\n${SOFT_ANSWER}`]));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("passes /no_think to the model and copes with the empty think block it writes", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "What is 2+2? /no_think" }] });
    const message = res.choices[0]!.message as Message;
    expect(message.content).toBe(SOFT_ANSWER);
    expect(message).not.toHaveProperty("reasoning_content");
    // <think>, the blank line and </think> are still reasoning tokens.
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(3);
    const out = await collect(
      await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "What is 2+2? /no_think" }], stream: true }),
    );
    expect(out.reasoning).toBe("");
    expect(out.content).toBe(SOFT_ANSWER);
  });

  it("/think cannot reopen thinking that the request switched off", async () => {
    const res = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "Think hard. /think" }],
      // @ts-expect-error DashScope-style extension field
      enable_thinking: false,
    });
    expect(res.choices[0]!.message.content).toBe(SOFT_ANSWER);
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(0);
  });

  it("LangChain sees no reasoning and the plain answer", async () => {
    const chat = new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });
    const msg = await chat.invoke("What is 2+2? /no_think");
    expect(msg.content).toBe(SOFT_ANSWER);
    expect(msg.additional_kwargs.reasoning_content).toBeUndefined();
  });
});

describe("server-wide reasoning defaults from config", () => {
  let server: TestServer;
  let client: OpenAI;
  const BUDGET = 4;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(THINKING_SCRIPT), {
      "generation.enableThinking": false,
      "generation.thinkingBudget": BUDGET,
      "generation.reasoningFormat": "inline",
      "generation.reasoningAlias": true,
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const ask = async (extra: Extra = {}) => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], ...extra });
    return { res, message: res.choices[0]!.message as Message };
  };

  it("generation.enableThinking: false is the default a request can override", async () => {
    const { message } = await ask();
    expect(message.content).toBe(ANSWER);
    expect(message).not.toHaveProperty("reasoning_content");
    expect(message).not.toHaveProperty("reasoning");
  });

  it("generation.reasoningFormat inline and generation.thinkingBudget apply when the request does not say", async () => {
    const { res, message } = await ask({ enable_thinking: true });
    const match = /^<think>\n(.+)\n<\/think>\n\n(.*)$/s.exec(message.content!);
    expect(match).not.toBeNull();
    expect(THOUGHT.startsWith(match![1]!)).toBe(true);
    expect(match![1]!.length).toBeLessThan(THOUGHT.length);
    expect(match![2]).toBe(ANSWER);
    expect(res.usage!.completion_tokens_details!.reasoning_tokens).toBe(1 + BUDGET + 2);
  });

  it("generation.reasoningAlias also fills `reasoning`, in the message and in deltas", async () => {
    const { message } = await ask({ enable_thinking: true, reasoning_format: "separate", thinking_budget: 0 });
    expect(message.reasoning_content).toBe(THOUGHT);
    expect(message.reasoning).toBe(THOUGHT);
    const out = await collect(
      await client.chat.completions.create({
        model: server.modelId,
        messages: [{ role: "user", content: "hi" }],
        stream: true,
        enable_thinking: true,
        reasoning_format: "separate",
      } as OpenAI.Chat.ChatCompletionCreateParamsStreaming),
    );
    expect(out.reasoning.length).toBeGreaterThan(0);
    expect(out.reasoningAlias).toBe(out.reasoning);
    expect(out.content).toBe(ANSWER);
  });
});
