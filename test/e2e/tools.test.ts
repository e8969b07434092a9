/**
 * Tool calling end to end on scripted models that write Qwen3 `<tool_call>` blocks: parsing into
 * OpenAI tool calls, streaming deltas, tool_choice (free, forced by grammar, none), tool results
 * going back through the template, and the same through LangChain.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { AIMessage, AIMessageChunk, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { collect } from "../helpers/chat.js";
import { TIME_TOOL, WEATHER_CALL, WEATHER_CALL_SCRIPT, WEATHER_THOUGHT, WEATHER_TOOL } from "../helpers/scripts.js";

type Tool = OpenAI.Chat.ChatCompletionTool;
type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };

const getWeather: Tool = { type: "function", function: WEATHER_TOOL };
const getTime: Tool = { type: "function", function: TIME_TOOL };
const TOOLS = [getWeather, getTime];
const ID = /^call_[0-9a-f]{24}$/;

describe("a scripted model that thinks, then calls one tool", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(WEATHER_CALL_SCRIPT));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const ask = async (extra: Partial<Params> & Record<string, unknown> = {}) => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "Weather in Paris?" }], tools: TOOLS, ...extra } as Params);
    return { res, message: res.choices[0]!.message as Message };
  };
  const expectWeatherCall = (message: Message) => {
    expect(message.tool_calls).toHaveLength(1);
    const call = message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.id).toMatch(ID);
    expect(call.type).toBe("function");
    expect(call.function.name).toBe("get_weather");
    expect(typeof call.function.arguments).toBe("string");
    expect(JSON.parse(call.function.arguments)).toEqual(WEATHER_CALL);
  };

  it("parses the call into message.tool_calls, content null, finish_reason tool_calls, reasoning apart", async () => {
    const { res, message } = await ask();
    expectWeatherCall(message);
    expect(message.content).toBeNull();
    expect(message.reasoning_content).toBe(WEATHER_THOUGHT);
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("with thinking off the call is the whole answer", async () => {
    const { res, message } = await ask({ enable_thinking: false });
    expectWeatherCall(message);
    expect(message).not.toHaveProperty("reasoning_content");
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("streams the call like OpenAI: index on every delta, id/type/name once, then argument fragments", async () => {
    const out = await collect(
      await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "Weather in Paris?" }], tools: TOOLS, stream: true }),
    );
    expect(out.reasoning).toBe(WEATHER_THOUGHT);
    expect(out.content).toBe("");
    const [first, ...rest] = out.toolCallDeltas;
    expect(first).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(first!.id).toMatch(ID);
    expect(rest.length).toBeGreaterThan(2);
    for (const d of rest) {
      expect(d.index).toBe(0);
      expect(d).not.toHaveProperty("id");
      expect(d).not.toHaveProperty("type");
      expect(d.function).not.toHaveProperty("name");
    }
    expect(out.toolCalls).toHaveLength(1);
    expect(out.toolCalls[0]!.name).toBe("get_weather");
    expect(JSON.parse(out.toolCalls[0]!.arguments)).toEqual(WEATHER_CALL);
    expect(out.finishReason).toBe("tool_calls");
  });

  it.each([
    ["required", "required", true],
    ["named", { type: "function", function: { name: "get_weather" } }, true],
    ["required, thinking off", "required", false],
    ["named, thinking off", { type: "function", function: { name: "get_weather" } }, false],
  ] as const)("tool_choice %s: the grammar leaves a call that already fits untouched", async (_name, toolChoice, thinking) => {
    const { res, message } = await ask({ tool_choice: toolChoice as Params["tool_choice"], enable_thinking: thinking });
    expectWeatherCall(message);
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    if (thinking) expect(message.reasoning_content).toBe(WEATHER_THOUGHT);
  });

  it.each([
    ["thinking off", false],
    ["after a free thought", true],
  ])("a named tool_choice forces a valid call to that function against the model's own choice (%s)", async (_name, thinking) => {
    const { res, message } = await ask({ tool_choice: { type: "function", function: { name: "get_time" } }, enable_thinking: thinking, max_tokens: 200 });
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    expect(message.tool_calls).toHaveLength(1);
    const call = message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("get_time");
    const args = JSON.parse(call.function.arguments) as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(["timezone"]);
    expect(["UTC", "CET"]).toContain(args["timezone"]);
    if (thinking) expect(message.reasoning_content).toBe(WEATHER_THOUGHT);
  });

  it("tool_choice none: the tools are shown to the model but its output stays text", async () => {
    const { res, message } = await ask({ tool_choice: "none", enable_thinking: false });
    expect(message.tool_calls ?? []).toEqual([]);
    expect(message.content).toContain("<tool_call>");
    expect(message.content).toContain('"get_weather"');
    expect(res.choices[0]!.finish_reason).toBe("stop");
  });

  it("a call cut off by max_tokens is returned as text, not as a broken call or a 500", async () => {
    const { res, message } = await ask({ enable_thinking: false, max_tokens: 8 });
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(message.tool_calls ?? []).toEqual([]);
    expect(message.content!.startsWith("<tool_call>\n{")).toBe(true);
  });

  it("rejects a tool_choice naming a function that is not in tools, and required without tools", async () => {
    const named = await ask({ tool_choice: { type: "function", function: { name: "get_stock_price" } } }).catch((e: unknown) => e);
    expect(named).toBeInstanceOf(OpenAI.BadRequestError);
    expect((named as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tool_choice");
    expect((named as Error).message).toContain("get_stock_price");
    const required = await ask({ tools: undefined, tool_choice: "required" }).catch((e: unknown) => e);
    expect((required as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tool_choice");
  });

  it("a forced tool whose parameters the grammar cannot express is a 400 naming the keyword; auto accepts it", async () => {
    const zip: Tool = {
      type: "function",
      function: { name: "lookup_zip", parameters: { type: "object", properties: { zip: { type: "string", pattern: "^[0-9]{5}$" } } } },
    };
    const err = await ask({ tools: [getWeather, zip], tool_choice: "required" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("tools[1].function.parameters.properties.zip.pattern");
    expect((err as Error).message).toContain("'pattern'");
    const { message } = await ask({ tools: [getWeather, zip], enable_thinking: false });
    expectWeatherCall(message);
  });

  it("round-trips a tool result through the chat template and answers", async () => {
    const first = await ask({ enable_thinking: false });
    const call = first.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    const history: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: "18 degrees, sunny" },
    ];
    const res = await client.chat.completions.create({ model: server.modelId, messages: history, tools: TOOLS, enable_thinking: false } as Params);
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    // The call and its result are in the prompt now: it grew by far more than the user's question.
    expect(res.usage!.prompt_tokens).toBeGreaterThan(first.res.usage!.prompt_tokens + 20);
    const missingId = await client.chat.completions
      .create({ model: server.modelId, messages: [history[0]!, history[1]!, { role: "tool", content: "x" } as never], tools: TOOLS })
      .catch((e: unknown) => e);
    expect((missingId as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages[2].tool_call_id");
  });

  describe("LangChain ChatOpenAI", () => {
    const chat = () => new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });

    it("bindTools + invoke gives tool_calls with parsed args, and the reasoning", async () => {
      const msg = await chat().bindTools(TOOLS).invoke("Weather in Paris?");
      expect(msg.tool_calls).toHaveLength(1);
      expect(msg.tool_calls![0]).toMatchObject({ name: "get_weather", args: WEATHER_CALL, type: "tool_call" });
      expect(msg.tool_calls![0]!.id).toMatch(ID);
      expect(msg.invalid_tool_calls ?? []).toEqual([]);
      expect(msg.additional_kwargs.reasoning_content).toBe(WEATHER_THOUGHT);
      expect(msg.response_metadata.finish_reason).toBe("tool_calls");
    });

    it("bindTools + stream merges the chunks into one call, name not repeated", async () => {
      let merged: AIMessageChunk | undefined;
      for await (const c of await chat().bindTools(TOOLS).stream("Weather in Paris?")) merged = merged ? merged.concat(c) : c;
      expect(merged!.tool_calls).toHaveLength(1);
      expect(merged!.tool_calls![0]).toMatchObject({ name: "get_weather", args: WEATHER_CALL });
      expect(merged!.tool_call_chunks![0]!.name).toBe("get_weather");
    });

    it("bindTools with tool_choice forces the named function", async () => {
      const msg = await chat().bindTools(TOOLS, { tool_choice: "get_time" }).invoke("What time is it?");
      expect(msg.tool_calls).toHaveLength(1);
      expect(msg.tool_calls![0]!.name).toBe("get_time");
      expect(["UTC", "CET"]).toContain(msg.tool_calls![0]!.args["timezone"]);
    });

    it("withStructuredOutput via function calling returns the parsed arguments", async () => {
      const structured = chat().withStructuredOutput(getWeather.function.parameters!, { name: "get_weather", method: "functionCalling" });
      expect(await structured.invoke("Weather in Paris?")).toEqual(WEATHER_CALL);
    });

    it("sends the tool result back (ToolMessage) and gets an answer", async () => {
      const model = chat().bindTools(TOOLS);
      const ai = await model.invoke([new HumanMessage("Weather in Paris?")]);
      const call = ai.tool_calls![0]!;
      const next = await model.invoke([
        new HumanMessage("Weather in Paris?"),
        new AIMessage({ content: "", tool_calls: [call] }),
        new ToolMessage({ tool_call_id: call.id!, content: "18 degrees, sunny" }),
      ]);
      expect(next.tool_calls![0]!.name).toBe("get_weather");
      expect(next.usage_metadata!.input_tokens).toBeGreaterThan(ai.usage_metadata!.input_tokens + 20);
    });
  });
});

const PREAMBLE = "Let me check both cities.";

describe("a scripted model that writes text, then two calls", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(
      await scriptedModel([
        `${PREAMBLE}\n\n`,
        { token: "<tool_call>" },
        '\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',
        { token: "</tool_call>" },
        "\n",
        { token: "<tool_call>" },
        // Written compactly: a scripted model cannot repeat the first call's token pairs.
        '{"name":"get_weather","arguments":{"city":"London"}}',
        { token: "</tool_call>" },
      ]),
    );
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const request = { messages: [{ role: "user" as const, content: "Weather in Paris and London?" }], tools: [getWeather] };

  it("returns both calls with distinct ids, and the text outside them as content", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, ...request });
    const message = res.choices[0]!.message;
    expect(message.content).toBe(PREAMBLE);
    const calls = message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ["get_weather", { city: "Paris" }],
      ["get_weather", { city: "London" }],
    ]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    for (const c of calls) expect(c.id).toMatch(ID);
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("streams two calls on indexes 0 and 1, each announced once", async () => {
    const out = await collect(await client.chat.completions.create({ model: server.modelId, ...request, stream: true }));
    expect(out.content).toBe(PREAMBLE);
    expect(out.toolCallDeltas.filter((d) => d.function?.name).map((d) => [d.index, d.function!.name])).toEqual([
      [0, "get_weather"],
      [1, "get_weather"],
    ]);
    expect(out.toolCallDeltas.filter((d) => d.id).map((d) => d.index)).toEqual([0, 1]);
    expect(out.toolCalls.map((c) => JSON.parse(c.arguments))).toEqual([{ city: "Paris" }, { city: "London" }]);
    expect(out.toolCalls[0]!.id).not.toBe(out.toolCalls[1]!.id);
    expect(out.finishReason).toBe("tool_calls");
  });

  it("parallel_tool_calls: false keeps the first call only", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, ...request, parallel_tool_calls: false });
    const calls = res.choices[0]!.message.tool_calls as OpenAI.Chat.ChatCompletionMessageFunctionToolCall[];
    expect(calls.map((c) => JSON.parse(c.function.arguments))).toEqual([{ city: "Paris" }]);
  });

  it("LangChain bindTools + stream gets both calls and the text", async () => {
    const chat = new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });
    let merged: AIMessageChunk | undefined;
    for await (const c of await chat.bindTools([getWeather]).stream("Weather in Paris and London?")) merged = merged ? merged.concat(c) : c;
    expect(merged!.content).toBe(PREAMBLE);
    expect(merged!.tool_calls!.map((c) => c.args)).toEqual([{ city: "Paris" }, { city: "London" }]);
  });
});
