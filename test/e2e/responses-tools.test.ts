/**
 * Function tools over /v1/responses on a scripted model that thinks, then writes a Qwen3
 * `<tool_call>` block: function_call items (JSON and streamed), tool_choice, the round trip with
 * function_call_output (by previous_response_id and by resending the items), with evidence of
 * the prompt the model was given, and LangChain's ChatOpenAI with useResponsesApi and bindTools.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { AIMessageChunk, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { chatPromptTokens, eventOutline } from "../helpers/responses.js";
import { TIME_TOOL, WEATHER_CALL, WEATHER_CALL_SCRIPT, WEATHER_THOUGHT, WEATHER_TOOL } from "../helpers/scripts.js";

type Create = OpenAI.Responses.ResponseCreateParamsNonStreaming;
type CreateStream = OpenAI.Responses.ResponseCreateParamsStreaming;
type Call = OpenAI.Responses.ResponseFunctionToolCall;
type Event = OpenAI.Responses.ResponseStreamEvent;

const TOOLS: OpenAI.Responses.FunctionTool[] = [
  { type: "function", ...WEATHER_TOOL, strict: true },
  { type: "function", ...TIME_TOOL, strict: false },
];
/** The same tools as chat sends them, for /apply-template. */
const CHAT_TOOLS = TOOLS.map(({ name, description, parameters }) => ({ type: "function", function: { name, description, parameters } }));
const QUESTION = "Weather in Paris?";

describe("/v1/responses function tools on a scripted model", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(WEATHER_CALL_SCRIPT));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const create = (params: Partial<Create> & Record<string, unknown> = {}) =>
    client.responses.create({ model: server.modelId, input: QUESTION, tools: TOOLS, ...params } as Create);
  const callsOf = (res: OpenAI.Responses.Response) => res.output.filter((o): o is Call => o.type === "function_call");

  it("returns the call as a function_call item after the reasoning item; no message, output_text empty", async () => {
    const res = await create();
    expect(res.status).toBe("completed");
    expect(res.output.map((o) => o.type)).toEqual(["reasoning", "function_call"]);
    const [call] = callsOf(res);
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", status: "completed" });
    expect(call!.id).toMatch(/^fc_/);
    expect(call!.call_id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(JSON.parse(call!.arguments)).toEqual(WEATHER_CALL);
    expect(res.output_text).toBe("");
    expect(res.tools).toEqual([
      { type: "function", name: "get_weather", description: "Current weather in a city", parameters: WEATHER_TOOL.parameters, strict: true },
      { type: "function", name: "get_time", description: "Current time in a time zone", parameters: TIME_TOOL.parameters, strict: false },
    ]);
  });

  it("streams the call: item added with its name, argument deltas, then done with the whole arguments", async () => {
    const events: Event[] = [];
    for await (const ev of await client.responses.create({ model: server.modelId, input: QUESTION, tools: TOOLS, stream: true, reasoning: { effort: "none" } } as CreateStream)) events.push(ev);
    expect(eventOutline(events.map((e) => e.type))).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const added = events.find((e): e is OpenAI.Responses.ResponseOutputItemAddedEvent => e.type === "response.output_item.added")!;
    expect(added.item).toMatchObject({ type: "function_call", name: "get_weather", arguments: "", status: "in_progress" });
    const deltas = events.filter((e): e is OpenAI.Responses.ResponseFunctionCallArgumentsDeltaEvent => e.type === "response.function_call_arguments.delta");
    const done = events.find((e): e is OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent => e.type === "response.function_call_arguments.done")!;
    expect(deltas.map((d) => d.delta).join("")).toBe(done.arguments);
    expect(JSON.parse(done.arguments)).toEqual(WEATHER_CALL);
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(callsOf(completed.response)[0]).toMatchObject({ id: added.item.id, arguments: done.arguments, status: "completed" });
  });

  it("a named tool_choice forces a valid call to that function against the model's own choice", async () => {
    const res = await create({ tool_choice: { type: "function", name: "get_time" }, reasoning: { effort: "none" }, max_output_tokens: 200 });
    const calls = callsOf(res);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.name).toBe("get_time");
    const args = JSON.parse(calls[0]!.arguments) as Record<string, unknown>;
    expect(Object.keys(args)).toEqual(["timezone"]);
    expect(["UTC", "CET"]).toContain(args["timezone"]);
    expect(res.tool_choice).toEqual({ type: "function", name: "get_time" });
  });

  it("tool_choice none: the model's block stays text in a message item", async () => {
    const res = await create({ tool_choice: "none", reasoning: { effort: "none" } });
    expect(res.output.map((o) => o.type)).toEqual(["message"]);
    expect(res.output_text.startsWith("<tool_call>\n{")).toBe(true);
  });

  it("a call cut off by max_output_tokens is text in an incomplete response, streamed or not", async () => {
    const res = await create({ reasoning: { effort: "none" }, max_output_tokens: 8 });
    expect(res.status).toBe("incomplete");
    expect(callsOf(res)).toEqual([]);
    expect(res.output_text.startsWith("<tool_call>\n{")).toBe(true);
    const final = await client.responses.stream({ model: server.modelId, input: QUESTION, tools: TOOLS, reasoning: { effort: "none" }, max_output_tokens: 8 }).finalResponse();
    expect(final.status).toBe("incomplete");
    expect(final.output.map((o) => o.type)).toEqual(["message"]);
    expect(final.output_text).toBe(res.output_text);
  });

  describe("the round trip with function_call_output", () => {
    const RESULT = "18 degrees, sunny";
    /** The chat conversation the model must be shown for turn two. */
    const expectedPrompt = (call: Call) =>
      chatPromptTokens(server, {
        tools: CHAT_TOOLS,
        messages: [
          { role: "user", content: QUESTION },
          { role: "assistant", content: null, reasoning_content: WEATHER_THOUGHT, tool_calls: [{ id: call.call_id, type: "function", function: { name: call.name, arguments: call.arguments } }] },
          { role: "tool", tool_call_id: call.call_id, content: RESULT },
        ],
      });

    it("by previous_response_id: the call, its reasoning and the result are in the prompt", async () => {
      const first = await create();
      const [call] = callsOf(first);
      const second = await create({ previous_response_id: first.id, input: [{ type: "function_call_output", call_id: call!.call_id, output: RESULT }] });
      expect(second.status).toBe("completed");
      expect(second.usage!.input_tokens).toBe(await expectedPrompt(call!));
    });

    it("by resending the items (store: false): the same prompt", async () => {
      const first = await create({ store: false });
      const [call] = callsOf(first);
      const second = await create({
        store: false,
        input: [{ role: "user", content: QUESTION }, ...first.output, { type: "function_call_output", call_id: call!.call_id, output: [{ type: "input_text", text: RESULT }] }] as Create["input"],
      });
      expect(second.usage!.input_tokens).toBe(await expectedPrompt(call!));
    });
  });

  describe("LangChain ChatOpenAI with useResponsesApi", () => {
    const chat = () =>
      new ChatOpenAI({ model: server.modelId, apiKey: "unused", useResponsesApi: true, configuration: { baseURL: server.baseURL }, maxRetries: 0 }).bindTools(
        TOOLS.map(({ name, description, parameters }) => ({ type: "function" as const, function: { name, description: description!, parameters: parameters! } })),
      );

    it("bindTools + invoke gives the call with parsed args", async () => {
      const msg = await chat().invoke(QUESTION);
      expect(msg.id).toMatch(/^resp_/);
      expect(msg.tool_calls).toHaveLength(1);
      expect(msg.tool_calls![0]).toMatchObject({ name: "get_weather", args: WEATHER_CALL, type: "tool_call" });
      expect(msg.tool_calls![0]!.id).toMatch(/^call_/);
    });

    it("a tool result sent back as a ToolMessage reaches the model with the call and its reasoning", async () => {
      const question = new HumanMessage(QUESTION);
      const ai = await chat().invoke([question]);
      const call = ai.tool_calls![0]!;
      const result = new ToolMessage({ tool_call_id: call.id!, content: "18 degrees, sunny" });
      const next = await chat().invoke([question, ai, result]);
      expect(next.usage_metadata!.input_tokens).toBe(
        await chatPromptTokens(server, {
          tools: CHAT_TOOLS,
          messages: [
            { role: "user", content: QUESTION },
            { role: "assistant", content: null, reasoning_content: WEATHER_THOUGHT, tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: JSON.stringify(call.args) } }] },
            { role: "tool", tool_call_id: call.id, content: "18 degrees, sunny" },
          ],
        }),
      );
    });

    it("bindTools + stream merges the chunks into the same call", async () => {
      let merged: AIMessageChunk | undefined;
      for await (const c of await chat().stream(QUESTION)) merged = merged ? merged.concat(c) : c;
      expect(merged!.tool_calls).toHaveLength(1);
      expect(merged!.tool_calls![0]).toMatchObject({ name: "get_weather", args: WEATHER_CALL });
    });
  });
});
