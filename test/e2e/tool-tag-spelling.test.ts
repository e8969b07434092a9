/**
 * Forced tool calls whichever way the model spells the tags: `<tool_call>` (and `</tool_call>`,
 * `<think>`, `</think>`) as one added token, or as ordinary text pieces such as `<`, `tool`,
 * `_call`, `>`. And how the grammar meets the thought: a model that answers at once although
 * thinking is on must not have its call taken for a thought, and a model that ends inside its
 * thought still owes the answer the grammar requires.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import type { ScriptSegment } from "../../src/models/synthetic/index.js";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { collect } from "../helpers/chat.js";

type Tool = OpenAI.Chat.ChatCompletionTool;
type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };
type FunctionCall = OpenAI.Chat.ChatCompletionMessageFunctionToolCall;

const THOUGHT = "Paris weather, so get_weather.";
const CALL = { city: "Paris" };
const CALL_JSON = '{"name": "get_weather", "arguments": {"city": "Paris"}}';

const getWeather: Tool = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  },
};
/** Not the model's choice; its only argument is one of two strings, so a forced call stays short. */
const getTime: Tool = {
  type: "function",
  function: { name: "get_time", parameters: { type: "object", properties: { timezone: { enum: ["UTC", "CET"] } }, required: ["timezone"] } },
};
const TOOLS = [getWeather, getTime];
const NAMED_WEATHER = { type: "function", function: { name: "get_weather" } } as const;
const NAMED_TIME = { type: "function", function: { name: "get_time" } } as const;

const SPELLINGS = {
  "one added token": (tag: string): ScriptSegment => ({ token: tag }),
  "ordinary text pieces": (tag: string): ScriptSegment => tag,
};

describe.each(Object.entries(SPELLINGS))("tags spelled as %s", (_spelling, tag) => {
  const callScript = (body: string): ScriptSegment[] => [tag("<tool_call>"), body, tag("</tool_call>")];

  const client = (server: TestServer) => new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  const ask = async (server: TestServer, extra: Partial<Params> & Record<string, unknown>) => {
    const res = await client(server).chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: TOOLS,
      max_tokens: 200,
      ...extra,
    } as Params);
    return { res, message: res.choices[0]!.message as Message };
  };
  const askStream = async (server: TestServer, extra: Record<string, unknown>) =>
    collect(
      await client(server).chat.completions.create({
        model: server.modelId,
        messages: [{ role: "user", content: "Weather in Paris?" }],
        tools: TOOLS,
        max_tokens: 200,
        stream: true,
        ...extra,
      } as OpenAI.Chat.ChatCompletionCreateParamsStreaming),
    );
  const expectWeatherCall = (message: Message) => {
    expect(message.tool_calls).toHaveLength(1);
    const call = message.tool_calls![0]! as FunctionCall;
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual(CALL);
    expect(message.content).toBeNull();
  };
  const expectForcedTimeCall = (call: { name: string; arguments: string }) => {
    expect(call.name).toBe("get_time");
    const args = JSON.parse(call.arguments) as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(["timezone"]);
    expect(["UTC", "CET"]).toContain(args["timezone"]);
  };

  describe("a model that answers with the call at once", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(await scriptedModel(callScript(`\n${CALL_JSON}\n`)));
    });
    afterAll(() => server?.stop());

    it.each([
      ["required", "required", true],
      ["named", NAMED_WEATHER, true],
      ["required, thinking off", "required", false],
      ["named, thinking off", NAMED_WEATHER, false],
      ["auto", "auto", true],
    ] as const)("tool_choice %s returns the call", async (_name, toolChoice, thinking) => {
      const { res, message } = await ask(server, { tool_choice: toolChoice, enable_thinking: thinking });
      expectWeatherCall(message);
      expect(message).not.toHaveProperty("reasoning_content");
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    });

    it.each([
      ["required", "required"],
      ["named", NAMED_WEATHER],
      ["auto", "auto"],
    ] as const)("tool_choice %s streams the call", async (_name, toolChoice) => {
      const out = await askStream(server, { tool_choice: toolChoice });
      expect(out.reasoning).toBe("");
      expect(out.content).toBe("");
      expect(out.toolCalls).toHaveLength(1);
      expect(out.toolCalls[0]!.name).toBe("get_weather");
      expect(JSON.parse(out.toolCalls[0]!.arguments)).toEqual(CALL);
      expect(out.finishReason).toBe("tool_calls");
    });

    it("a named tool_choice against the model's choice is enforced from the first token, thinking on", async () => {
      const { res, message } = await ask(server, { tool_choice: NAMED_TIME });
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");
      expect(message.tool_calls).toHaveLength(1);
      expectForcedTimeCall((message.tool_calls![0]! as FunctionCall).function);
      expect(message).not.toHaveProperty("reasoning_content");
    });
  });

  describe("a model that thinks, then calls", () => {
    let server: TestServer;
    beforeAll(async () => {
      // Compact JSON: a scripted model cannot repeat a token pair, and the thought's tags share pieces with the call's.
      const call = callScript(`\n${CALL_JSON.replaceAll(": ", ":")}\n`);
      server = await startTestServer(await scriptedModel([tag("<think>"), `\n${THOUGHT}\n`, tag("</think>"), "\n\n", ...call]));
    });
    afterAll(() => server?.stop());

    it.each([
      ["required", "required"],
      ["named", NAMED_WEATHER],
    ] as const)("tool_choice %s: the thought stays free, the call after it is returned", async (_name, toolChoice) => {
      const { res, message } = await ask(server, { tool_choice: toolChoice });
      expectWeatherCall(message);
      expect(message.reasoning_content).toBe(THOUGHT);
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");

      const out = await askStream(server, { tool_choice: toolChoice });
      expect(out.reasoning).toBe(THOUGHT);
      expect(out.content).toBe("");
      expect(out.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([["get_weather", CALL]]);
      expect(out.finishReason).toBe("tool_calls");
    });

    it("a named tool_choice against the model's choice is enforced after the thought", async () => {
      const out = await askStream(server, { tool_choice: NAMED_TIME });
      expect(out.reasoning).toBe(THOUGHT);
      expect(out.toolCalls).toHaveLength(1);
      expectForcedTimeCall(out.toolCalls[0]!);
      expect(out.finishReason).toBe("tool_calls");
    });
  });

  describe("a model that ends inside its thought", () => {
    const UNSURE = "Not sure what to do.";
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(await scriptedModel([tag("<think>"), `\n${UNSURE}`]));
    });
    afterAll(() => server?.stop());

    it("tool_choice required: the thought is closed for it and a call follows", async () => {
      // One call: past the thought this model is off its script, and more calls would be noise.
      const { res, message } = await ask(server, { tools: [getTime], tool_choice: "required", parallel_tool_calls: false });
      expect(message.reasoning_content).toBe(UNSURE);
      expect(message.tool_calls).toHaveLength(1);
      expectForcedTimeCall((message.tool_calls![0]! as FunctionCall).function);
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    });

    it("response_format json_schema: the thought is closed for it and a conforming answer follows", async () => {
      const schema = { type: "object", properties: { level: { enum: ["low", "high"] } }, required: ["level"], additionalProperties: false };
      const { res, message } = await ask(server, { tools: undefined, response_format: { type: "json_schema", json_schema: { name: "level", schema, strict: true } } });
      expect(message.reasoning_content).toBe(UNSURE);
      const value = JSON.parse(message.content!) as Record<string, unknown>;
      expect(Object.keys(value)).toEqual(["level"]);
      expect(["low", "high"]).toContain(value["level"]);
      expect(res.choices[0]!.finish_reason).toBe("stop");
    });

    it("without a grammar the thought may end the output, as before", async () => {
      const { res, message } = await ask(server, { tools: undefined });
      expect(message.reasoning_content).toBe(UNSURE);
      expect(message.content).toBe("");
      expect(res.choices[0]!.finish_reason).toBe("stop");
    });
  });
});
