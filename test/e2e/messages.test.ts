/**
 * Anthropic's Messages API end to end with the real `@anthropic-ai/sdk`: exact answers on
 * scripted models, streaming events, Qwen3 thinking and its budget, tool use both ways,
 * stop sequences, count_tokens, and Anthropic error objects.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import Anthropic from "@anthropic-ai/sdk";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { postNamedEvents } from "../helpers/sse.js";
import { waitFor } from "../helpers/stream.js";
import { ANSWER, ANSWER_TOKENS, PLAN, THINKING_SCRIPT, THOUGHT, TIME_TOOL, WEATHER_CALL, WEATHER_CALL_SCRIPT, WEATHER_TOOL } from "../helpers/scripts.js";

type Params = Anthropic.MessageCreateParamsNonStreaming;

const KEY = "test-key";
const MSG_ID = /^msg_[\w.:-]+$/;

/**
 * A message with what differs between two runs of the same request left out: its id, and how the
 * prompt split between cache and input; and `parsed_output`, which the SDK's stream helper adds.
 */
const comparable = (m: Anthropic.Message) => {
  const { id: _id, usage, parsed_output: _parsed, ...rest } = m as Anthropic.Message & { parsed_output?: unknown };
  return { ...rest, output_tokens: usage.output_tokens, prompt_tokens: usage.input_tokens + (usage.cache_read_input_tokens ?? 0) };
};

describe("/v1/messages on a scripted thinking model", () => {
  let server: TestServer;
  let client: Anthropic;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(THINKING_SCRIPT), { "server.apiKeys": [KEY] });
    client = new Anthropic({ baseURL: server.url, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const params = (extra: Partial<Params> = {}): Params => ({ model: server.modelId, max_tokens: 200, messages: [{ role: "user", content: "hi" }], ...extra });
  const errorOf = (p: unknown, path = "/v1/messages") => client.post(path, { body: p }).then(() => undefined, (e: unknown) => e as InstanceType<typeof Anthropic.APIError>);

  it("answers with a thinking block and a text block, exactly the script", async () => {
    const { data: msg, request_id, response } = await client.messages.create(params({ thinking: { type: "enabled", budget_tokens: 1024 } })).withResponse();
    expect(msg.id).toMatch(MSG_ID);
    expect(request_id).toBe(response.headers.get("x-request-id"));
    expect(msg).toMatchObject({ type: "message", role: "assistant", model: server.modelId, stop_reason: "end_turn", stop_sequence: null });
    expect(msg.content).toEqual([
      { type: "thinking", thinking: THOUGHT, signature: "" },
      { type: "text", text: ANSWER },
    ]);
    expect(msg.usage.output_tokens).toBe(PLAN.tokens.length);
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
    expect(msg.usage.cache_read_input_tokens).toBeGreaterThanOrEqual(0);
  });

  it("thinking disabled: the prompt closes the thought, only the answer comes back", async () => {
    const msg = await client.messages.create(params({ thinking: { type: "disabled" } }));
    expect(msg.content).toEqual([{ type: "text", text: ANSWER }]);
    expect(msg.stop_reason).toBe("end_turn");
    expect(msg.usage.output_tokens).toBe(ANSWER_TOKENS);
  });

  it("budget_tokens is the thinking budget: the engine closes the thought after it and the answer follows", async () => {
    const budget = 4;
    const msg = await client.messages.create(params({ thinking: { type: "enabled", budget_tokens: budget } }));
    const [thinking, text] = msg.content as [Anthropic.ThinkingBlock, Anthropic.TextBlock];
    expect(thinking.type).toBe("thinking");
    expect(thinking.thinking.length).toBeGreaterThan(0);
    expect(thinking.thinking.length).toBeLessThan(THOUGHT.length);
    expect(THOUGHT.startsWith(thinking.thinking)).toBe(true);
    expect(text).toEqual({ type: "text", text: ANSWER });
    // <think>, the budgeted thought, the injected "\n</think>\n\n", then the answer.
    expect(msg.usage.output_tokens).toBe(1 + budget + 3 + ANSWER_TOKENS);
  });

  it("streams with the SDK: the final message equals the non-streamed one", async () => {
    const p = params({ thinking: { type: "enabled", budget_tokens: 1024 }, system: [{ type: "text", text: "Be brief." }] });
    const plain = await client.messages.create(p);
    const stream = client.messages.stream(p);
    let text = "";
    let thinking = "";
    stream.on("text", (t) => (text += t));
    stream.on("thinking", (t) => (thinking += t));
    const final = await stream.finalMessage();
    expect(comparable(final)).toEqual(comparable(plain));
    expect(text).toBe(ANSWER);
    expect(thinking).toBe(THOUGHT);
  });

  it("sends Anthropic's events in order, each named as its type (model left out: one model is served)", async () => {
    const { model: _model, ...body } = params();
    const events = await postNamedEvents(`${server.url}/v1/messages`, { ...body, stream: true }, { "x-api-key": KEY, "anthropic-version": "2023-06-01" });
    for (const e of events) expect(e.data.type).toBe(e.event);
    // Runs of deltas collapsed: the shape of the stream.
    const shape = events.map((e) => (e.event === "content_block_delta" ? `delta:${(e.data["delta"] as { type: string }).type}` : e.event)).filter((name, i, all) => name !== all[i - 1]);
    expect(shape).toEqual([
      "message_start",
      "ping",
      "content_block_start",
      "delta:thinking_delta",
      "content_block_stop",
      "content_block_start",
      "delta:text_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const starts = events.filter((e) => e.event === "content_block_start").map((e) => e.data);
    expect(starts).toEqual([
      { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
      { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
    ]);
    const start = events[0]!.data["message"] as Anthropic.Message;
    expect(start).toMatchObject({ type: "message", role: "assistant", content: [], stop_reason: null, model: server.modelId });
    const delta = events.find((e) => e.event === "message_delta")!.data;
    expect(delta["delta"]).toEqual({ stop_reason: "end_turn", stop_sequence: null });
    expect((delta["usage"] as Anthropic.MessageDeltaUsage).output_tokens).toBe(PLAN.tokens.length);
  });

  it("stop_sequences: the answer ends before the sequence, which stop_sequence names", async () => {
    const p = params({ thinking: { type: "disabled" }, stop_sequences: ["nothing", "can I"], metadata: { user_id: "user-1" } });
    const msg = await client.messages.create(p);
    expect(msg.content).toEqual([{ type: "text", text: "Hi there! How " }]);
    expect(msg).toMatchObject({ stop_reason: "stop_sequence", stop_sequence: "can I" });
    const streamed = await client.messages.stream(p).finalMessage();
    expect(comparable(streamed)).toEqual(comparable(msg));
  });

  it("max_tokens reached: stop_reason max_tokens", async () => {
    const msg = await client.messages.create(params({ thinking: { type: "disabled" }, max_tokens: 3 }));
    expect(msg.stop_reason).toBe("max_tokens");
    expect(msg.usage.output_tokens).toBe(3);
    expect(ANSWER.startsWith((msg.content[0] as Anthropic.TextBlock).text)).toBe(true);
  });

  it("count_tokens gives the rendered prompt's tokens, the ones generation reports", async () => {
    const p = params({ thinking: { type: "disabled" }, system: "Be brief." });
    const { input_tokens } = await client.messages.countTokens({ model: p.model, messages: p.messages, system: p.system!, thinking: p.thinking! });
    const msg = await client.messages.create(p);
    expect(input_tokens).toBe(msg.usage.input_tokens + (msg.usage.cache_read_input_tokens ?? 0));
    const longer = await client.messages.countTokens({ model: p.model, messages: p.messages, system: "Be brief, and kind, and clear." });
    expect(longer.input_tokens).toBeGreaterThan(input_tokens);
  });

  it("passes thinking from earlier assistant turns back and answers", async () => {
    const msg = await client.messages.create(
      params({
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: [{ type: "thinking", thinking: THOUGHT, signature: "" }, { type: "redacted_thinking", data: "opaque" }, { type: "text", text: ANSWER }] },
          { role: "user", content: [{ type: "text", text: "hi " }, { type: "text", text: "again" }] },
        ],
      }),
    );
    expect(msg.content.at(-1)).toEqual({ type: "text", text: ANSWER });
  });

  it("errors are Anthropic error objects with the SDK's error classes", async () => {
    const missing = await errorOf({ model: server.modelId, messages: [{ role: "user", content: "hi" }] });
    expect(missing).toBeInstanceOf(Anthropic.BadRequestError);
    expect(missing!.error).toEqual({ type: "error", error: { type: "invalid_request_error", message: "Missing required parameter: 'max_tokens'" } });

    const role = await errorOf({ ...params(), messages: [{ role: "system", content: "hi" }] });
    expect(role).toBeInstanceOf(Anthropic.BadRequestError);
    expect(role!.error).toEqual({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("messages[0].role") } });

    const model = await errorOf(params({ model: "no-such-model" }));
    expect(model).toBeInstanceOf(Anthropic.NotFoundError);
    expect(model!.error).toEqual({ type: "error", error: { type: "not_found_error", message: "The model 'no-such-model' does not exist" } });

    const image = await errorOf(params({ messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } }] }] }));
    expect(image).toBeInstanceOf(Anthropic.BadRequestError);
    expect(image!.error).toEqual({ type: "error", error: { type: "invalid_request_error", message: "Content block type 'image' is not supported: this model reads text only" } });

    const unknownTool = await errorOf(params({ tools: [{ name: "a", input_schema: { type: "object" } }], tool_choice: { type: "tool", name: "b" } }));
    expect(unknownTool).toBeInstanceOf(Anthropic.BadRequestError);

    const streaming = await client.messages.stream({ ...params(), max_tokens: 0 }).finalMessage().catch((e: unknown) => e);
    expect(streaming).toBeInstanceOf(Anthropic.BadRequestError);

    const countMissing = await errorOf({ model: server.modelId }, "/v1/messages/count_tokens");
    expect(countMissing!.error).toEqual({ type: "error", error: { type: "invalid_request_error", message: "Missing required parameter: 'messages'" } });
  });

  it("authenticates with x-api-key and answers a wrong key with an authentication_error", async () => {
    const wrong = new Anthropic({ baseURL: server.url, apiKey: "wrong", maxRetries: 0 });
    const err = (await wrong.messages.create(params()).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.error).toEqual({ type: "error", error: { type: "authentication_error", message: "Incorrect API key provided" } });
  });

  it("leaves the OpenAI routes' errors in OpenAI's format", async () => {
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` }, body: "{}" });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: "Missing required parameter: 'messages'", type: "invalid_request_error", param: "messages", code: "missing_required_parameter" } });
  });
});

const TOOLS: Anthropic.Tool[] = [WEATHER_TOOL, TIME_TOOL].map(({ name, description, parameters }) => ({ name, description, input_schema: parameters }));

describe("/v1/messages tool use on a scripted model that calls a tool", () => {
  let server: TestServer;
  let client: Anthropic;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(WEATHER_CALL_SCRIPT));
    client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const QUESTION: Anthropic.MessageParam = { role: "user", content: "Weather in Paris?" };
  const params = (extra: Partial<Params> = {}): Params => ({ model: server.modelId, max_tokens: 200, messages: [QUESTION], tools: TOOLS, ...extra });

  it("returns a tool_use block with parsed input and stop_reason tool_use", async () => {
    const msg = await client.messages.create(params({ thinking: { type: "disabled" } }));
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.content).toEqual([{ type: "tool_use", id: expect.stringMatching(/^toolu_[0-9a-f]{24}$/), name: "get_weather", input: WEATHER_CALL }]);
  });

  it("streams the call as input_json_delta fragments; the final message equals the non-streamed one", async () => {
    const p = params();
    const plain = await client.messages.create(p);
    const streamed = await client.messages.stream(p).finalMessage();
    const withoutIds = (m: Anthropic.Message) => ({ ...comparable(m), content: m.content.map((b) => (b.type === "tool_use" ? { ...b, id: "" } : b)) });
    expect(withoutIds(streamed)).toEqual(withoutIds(plain));
    expect(plain.content.map((b) => b.type)).toEqual(["thinking", "tool_use"]);

    const events = await postNamedEvents(`${server.url}/v1/messages`, { ...p, stream: true });
    const toolStart = events.find((e) => e.event === "content_block_start" && (e.data["content_block"] as { type: string }).type === "tool_use")!;
    expect(toolStart.data["content_block"]).toEqual({ type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "get_weather", input: {} });
    const fragments = events
      .filter((e) => e.event === "content_block_delta" && e.data["index"] === toolStart.data["index"])
      .map((e) => e.data["delta"] as { type: string; partial_json: string });
    expect(fragments.length).toBeGreaterThan(0);
    expect(fragments.every((f) => f.type === "input_json_delta")).toBe(true);
    expect(JSON.parse(fragments.map((f) => f.partial_json).join(""))).toEqual(WEATHER_CALL);
    expect(events.find((e) => e.event === "message_delta")!.data["delta"]).toEqual({ stop_reason: "tool_use", stop_sequence: null });
  });

  it("sends the tool_use and its tool_result back: rendered exactly like the same chat conversation", async () => {
    const first = await client.messages.create(params({ thinking: { type: "disabled" } }));
    const call = first.content[0] as Anthropic.ToolUseBlock;
    const history: Anthropic.MessageParam[] = [
      QUESTION,
      { role: "assistant", content: first.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: [{ type: "text", text: "18 degrees, sunny" }] }] },
    ];
    const next = await client.messages.create(params({ messages: history, thinking: { type: "disabled" } }));
    expect(next.stop_reason).toBe("tool_use");
    const counted = await client.messages.countTokens({ model: server.modelId, messages: history, tools: TOOLS, thinking: { type: "disabled" } });
    expect(next.usage.input_tokens + (next.usage.cache_read_input_tokens ?? 0)).toBe(counted.input_tokens);

    const post = async (path: string, body: unknown) => (await fetch(`${server.url}${path}`, { method: "POST", body: JSON.stringify(body) })).json() as Promise<any>;
    const { prompt } = await post("/apply-template", {
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: call.id, type: "function", function: { name: "get_weather", arguments: JSON.stringify(WEATHER_CALL) } }] },
        { role: "tool", tool_call_id: call.id, content: "18 degrees, sunny" },
      ],
      tools: TOOLS.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } })),
      enable_thinking: false,
    });
    expect(prompt).toContain("<tool_response>\n18 degrees, sunny\n</tool_response>");
    const { tokens } = await post("/tokenize", { content: prompt });
    expect(counted.input_tokens).toBe(tokens.length);

    const failed = await client.messages.countTokens({
      model: server.modelId,
      messages: [...history.slice(0, 2), { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18 degrees, sunny", is_error: true }] }],
      tools: TOOLS,
      thinking: { type: "disabled" },
    });
    expect(failed.input_tokens).toBeGreaterThan(counted.input_tokens);
  });

  it("tool_choice tool forces that tool, with input following its schema", async () => {
    const msg = await client.messages.create(params({ thinking: { type: "disabled" }, tool_choice: { type: "tool", name: "get_time" } }));
    expect(msg.stop_reason).toBe("tool_use");
    expect(msg.content).toHaveLength(1);
    const block = msg.content[0] as Anthropic.ToolUseBlock;
    expect(block.name).toBe("get_time");
    expect(["UTC", "CET"]).toContain((block.input as { timezone: string }).timezone);
  });

  it("tool_choice none: the model's tool call text stays text", async () => {
    const msg = await client.messages.create(params({ thinking: { type: "disabled" }, tool_choice: { type: "none" } }));
    expect(msg.stop_reason).toBe("end_turn");
    expect(msg.content).toEqual([{ type: "text", text: expect.stringContaining('"name": "get_weather"') }]);
  });
});

describe("/v1/messages when the worker dies mid-stream", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true }));
  });
  afterAll(() => server?.stop());

  it("ends the stream with an error event in Anthropic's format", async () => {
    const client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
    const worker = server.running.registry.list()[0]!;
    const stream = client.messages.stream({ model: server.modelId, max_tokens: 900, messages: [{ role: "user", content: "count" }], thinking: { type: "disabled" } });
    await new Promise((resolve) => stream.once("text", resolve));
    process.kill(worker.pid!, "SIGKILL");
    const err = (await stream.finalMessage().catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err.error).toEqual({ type: "error", error: { type: "overloaded_error", message: expect.stringContaining("stopped unexpectedly") } });
    // The worker restarts with backoff; the server is stopped only once it is back.
    await waitFor(async () => (await fetch(`${server.url}/health`)).status, (s) => s === 200, 90_000, 100);
  }, 120_000);
});
