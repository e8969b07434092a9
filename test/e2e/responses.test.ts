/**
 * POST /v1/responses end to end on a scripted model that thinks, then answers: output items and
 * output_text exact, OpenAI's streaming events as the openai SDK and raw SSE see them, the store
 * (GET, DELETE, previous_response_id with evidence of the prompt the model was given, all across a
 * restart of the server), errors, and LangChain's ChatOpenAI with useResponsesApi.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { chatPromptTokens, eventOutline, postResponsesSse } from "../helpers/responses.js";
import { openStream, waitFor } from "../helpers/stream.js";
import { ANSWER, PLAN, REASONING_TOKENS, THINKING_SCRIPT, THOUGHT } from "../helpers/scripts.js";

type Create = OpenAI.Responses.ResponseCreateParamsNonStreaming;
type CreateStream = OpenAI.Responses.ResponseCreateParamsStreaming;
type Event = OpenAI.Responses.ResponseStreamEvent;

/** The chat a second turn after "hi" renders, its first answer passed back with its reasoning. */
const SECOND_TURN = [
  { role: "user", content: "hi" },
  { role: "assistant", content: ANSWER, reasoning_content: THOUGHT },
  { role: "user", content: "And how are you?" },
];

describe("/v1/responses on a scripted model that thinks", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(THINKING_SCRIPT), { "responses.maxStored": 3 });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const create = (params: Partial<Create> & Record<string, unknown>) => client.responses.create({ model: server.modelId, input: "hi", ...params } as Create);
  const errorOf = async (body: Record<string, unknown>) => {
    const res = await fetch(`${server.baseURL}/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: res.status, contentType: res.headers.get("content-type"), error: ((await res.json()) as { error: Record<string, unknown> }).error };
  };

  it("answers a string input: a reasoning item, then the message; output_text exact; usage in Responses names", async () => {
    const res = await create({});
    expect(res.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(res.object).toBe("response");
    expect(res.status).toBe("completed");
    expect(res.model).toBe(server.modelId);
    expect(res.output_text).toBe(ANSWER);
    expect(res.output).toHaveLength(2);
    const [reasoning, message] = res.output as [OpenAI.Responses.ResponseReasoningItem, OpenAI.Responses.ResponseOutputMessage];
    expect(reasoning).toMatchObject({ type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: THOUGHT }] });
    expect(reasoning.id).toMatch(/^rs_/);
    expect(message).toMatchObject({ type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: ANSWER, annotations: [] }] });
    expect(message.id).toMatch(/^msg_/);
    expect(res.usage).toMatchObject({ output_tokens: PLAN.tokens.length, output_tokens_details: { reasoning_tokens: REASONING_TOKENS } });
    expect(res.usage!.input_tokens).toBe(await chatPromptTokens(server, { messages: [{ role: "user", content: "hi" }] }));
    expect(res.usage!.total_tokens).toBe(res.usage!.input_tokens + res.usage!.output_tokens);
    expect(res.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(0);
    expect(res).toMatchObject({ error: null, incomplete_details: null, previous_response_id: null, store: true, tool_choice: "auto", tools: [], parallel_tool_calls: true, metadata: {} });
  });

  it("model may be left out; reasoning.effort 'none' turns thinking off (no reasoning item)", async () => {
    const res = await client.responses.create({ input: "hi", reasoning: { effort: "none" } });
    expect(res.output.map((o) => o.type)).toEqual(["message"]);
    expect(res.output_text).toBe(ANSWER);
    expect(res.usage!.output_tokens_details.reasoning_tokens).toBe(0);
  });

  it("message items, text parts, instructions and metadata reach the template as chat messages", async () => {
    const res = await create({
      instructions: "Be brief.",
      metadata: { session: "a1" },
      input: [
        { role: "developer", content: "Answer in English." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Hello, " }, { type: "input_text", text: "who are you?" }] },
        { role: "assistant", content: [{ type: "output_text", text: "A server.", annotations: [] }] },
        { role: "user", content: "hi" },
      ] as Create["input"],
    });
    expect(res.output_text).toBe(ANSWER);
    expect(res.instructions).toBe("Be brief.");
    expect(res.metadata).toEqual({ session: "a1" });
    const expected = await chatPromptTokens(server, {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "system", content: "Answer in English." },
        { role: "user", content: "Hello, who are you?" },
        { role: "assistant", content: "A server." },
        { role: "user", content: "hi" },
      ],
    });
    expect(res.usage!.input_tokens).toBe(expected);
  });

  it("max_output_tokens cut short: status incomplete with reason max_output_tokens", async () => {
    const res = await create({ max_output_tokens: 3 });
    expect(res.status).toBe("incomplete");
    expect(res.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(res.usage!.output_tokens).toBe(3);
    expect(res.max_output_tokens).toBe(3);
    const events = (await postResponsesSse(server, { input: "hi", max_output_tokens: 3, stream: true })).events;
    expect(events.at(-1)!.event).toBe("response.incomplete");
    expect(events.at(-1)!.data).toMatchObject({ response: { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } } });
  });

  it("streams OpenAI's events in order with consecutive sequence numbers; the text reassembles exactly", async () => {
    const events: Event[] = [];
    for await (const ev of await client.responses.create({ model: server.modelId, input: "hi", stream: true } as CreateStream)) events.push(ev);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    expect(eventOutline(events.map((e) => e.type))).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const of = <T extends Event["type"]>(type: T) => events.filter((e): e is Extract<Event, { type: T }> => e.type === type);
    expect(of("response.reasoning_text.delta").map((e) => e.delta).join("")).toBe(THOUGHT);
    expect(of("response.output_text.delta").map((e) => e.delta).join("")).toBe(ANSWER);
    expect(of("response.reasoning_text.done")[0]!.text).toBe(THOUGHT);
    expect(of("response.output_text.done")[0]!.text).toBe(ANSWER);
    const created = of("response.created")[0]!.response;
    expect(created).toMatchObject({ status: "in_progress", output: [] });
    const completed = of("response.completed")[0]!.response;
    expect(completed.id).toBe(created.id);
    expect(completed.output.map((o) => o.id)).toEqual(of("response.output_item.added").map((e) => e.item.id));
    expect(completed.usage!.output_tokens).toBe(PLAN.tokens.length);
    // The stream was stored like any response.
    expect((await client.responses.retrieve(completed.id)).output_text).toBe(ANSWER);
  });

  it("responses.stream() accumulates the events into the final response", async () => {
    const stream = client.responses.stream({ model: server.modelId, input: "hi" });
    let text = "";
    stream.on("response.output_text.delta", (e) => (text += e.delta));
    const final = await stream.finalResponse();
    expect(text).toBe(ANSWER);
    expect(final.output_text).toBe(ANSWER);
    expect(final.output[0]).toMatchObject({ type: "reasoning", content: [{ type: "reasoning_text", text: THOUGHT }] });
  });

  it("sends SSE `event:` lines naming each data payload's type, and no [DONE]", async () => {
    const { status, contentType, events, raw } = await postResponsesSse(server, { input: "hi", stream: true });
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/event-stream/);
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) expect(e.event).toBe(e.data["type"]);
    expect(raw).not.toContain("[DONE]");
    expect(raw.startsWith("event: response.created\ndata: {")).toBe(true);
  });

  it("stores responses: GET returns it, DELETE removes it, store:false keeps none, unknown ids are 404 error objects", async () => {
    const res = await create({});
    const got = await client.responses.retrieve(res.id);
    expect(got.id).toBe(res.id);
    expect(got.output_text).toBe(ANSWER);
    const del = await fetch(`${server.baseURL}/responses/${res.id}`, { method: "DELETE" });
    expect(await del.json()).toEqual({ id: res.id, object: "response", deleted: true });
    for (const method of ["GET", "DELETE"]) {
      const gone = await fetch(`${server.baseURL}/responses/${res.id}`, { method });
      expect(gone.status).toBe(404);
      expect(((await gone.json()) as { error: unknown }).error).toEqual({
        message: `Response with id '${res.id}' not found`,
        type: "not_found_error",
        param: null,
        code: "response_not_found",
      });
    }
    const unstored = await create({ store: false });
    expect(unstored).toMatchObject({ store: false });
    expect((await fetch(`${server.baseURL}/responses/${unstored.id}`)).status).toBe(404);
  });

  it("keeps at most responses.maxStored responses, dropping the least recently used", async () => {
    const [a, b, c] = [await create({}), await create({}), await create({})];
    await client.responses.retrieve(a.id);
    await create({});
    expect((await fetch(`${server.baseURL}/responses/${a.id}`)).status).toBe(200);
    expect((await fetch(`${server.baseURL}/responses/${b.id}`)).status).toBe(404);
    expect((await fetch(`${server.baseURL}/responses/${c.id}`)).status).toBe(200);
  });

  it("previous_response_id continues the conversation: the prompt holds the earlier turn, not its instructions", async () => {
    const first = await create({ instructions: "Be brief." });
    const second = await create({ input: "And how are you?", previous_response_id: first.id });
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output_text).toBe(ANSWER);
    expect(second.usage!.input_tokens).toBe(await chatPromptTokens(server, { messages: SECOND_TURN }));
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);
    // A third turn chains through both.
    const third = await create({ input: "Bye.", previous_response_id: second.id, instructions: "Be kind." });
    const expected = await chatPromptTokens(server, {
      messages: [{ role: "system", content: "Be kind." }, ...SECOND_TURN, { role: "assistant", content: ANSWER }, { role: "user", content: "Bye." }],
    });
    expect(third.usage!.input_tokens).toBe(expected);
  });

  it("refuses bad requests with OpenAI error objects naming the Responses field, before any SSE header", async () => {
    const cases: Array<[Record<string, unknown>, number, Record<string, unknown>]> = [
      [{ input: "hi", tools: [{ type: "web_search" }] }, 400, { param: "tools[0].type", code: "unsupported_tool_type" }],
      [{ input: "hi", tools: [{ type: "function" }] }, 400, { param: "tools[0].name", code: "missing_required_parameter" }],
      [{ input: [{ role: "user", content: [{ type: "input_image", image_url: "http://x/y.png" }] }] }, 400, { param: "input[0].content[0].type", code: "unsupported_content_type" }],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, 400, { param: "input[0].type", code: "unsupported_item_type" }],
      [{ input: [{ type: "function_call_output", output: "x" }] }, 400, { param: "input[0].call_id", code: "missing_required_parameter" }],
      [{ input: [{ role: "user", content: "q" }, { type: "function_call", call_id: "c", name: "f", arguments: "{oops" }] }, 400, { param: "input[1].arguments", code: "invalid_tool_arguments" }],
      [{ input: [{ role: "user", content: [{ type: "input_text" }] }] }, 400, { param: "input[0].content[0].text", code: "missing_required_parameter" }],
      [{ input: [{ role: "robot", content: "x" }] }, 400, { param: "input[0].role", code: "invalid_value" }],
      [{}, 400, { param: "input", code: "missing_required_parameter" }],
      [{ input: "hi", max_output_tokens: 100_000 }, 400, { param: "max_output_tokens", code: "limit_exceeded" }],
      [{ input: "hi", tool_choice: { type: "function", name: "nope" }, tools: [{ type: "function", name: "f" }] }, 400, { param: "tool_choice" }],
      [{ input: "hi", tool_choice: { type: "file_search" } }, 400, { param: "tool_choice.type", code: "unsupported_tool_choice" }],
      [{ input: "hi", text: { format: { type: "json_schema", name: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "^a+$" } } } } } }, 400, { param: "text.format.schema.properties.a.pattern", code: "unsupported_schema" }],
      [{ input: "hi", tools: [{ type: "function", name: "f", parameters: { type: "object", properties: { a: { type: "string", pattern: "^a+$" } } } }], tool_choice: "required" }, 400, { param: "tools[0].parameters.properties.a.pattern", code: "unsupported_schema" }],
      [{ input: "hi", previous_response_id: "resp_missing" }, 404, { param: "previous_response_id", code: "previous_response_not_found", type: "not_found_error" }],
      [{ input: "hi", model: "nope" }, 404, { code: "model_not_found", type: "not_found_error" }],
    ];
    for (const [body, status, error] of cases) {
      const res = await errorOf({ ...body, stream: true });
      expect({ body, status: res.status }).toEqual({ body, status });
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.error).toMatchObject({ type: "invalid_request_error", ...error });
      expect(typeof res.error["message"]).toBe("string");
    }
    const schemaError = await errorOf({ input: "hi", text: { format: { type: "json_schema", name: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "^a+$" } } } } } });
    expect(schemaError.error["message"]).toContain("'text.format.schema.properties.a'");
    await expect(create({})).resolves.toMatchObject({ status: "completed" });
  });

  describe("LangChain ChatOpenAI with useResponsesApi", () => {
    const chat = () =>
      new ChatOpenAI({ model: server.modelId, apiKey: "unused", useResponsesApi: true, configuration: { baseURL: server.baseURL }, maxRetries: 0 });

    it("invoke goes through /v1/responses: answer text, the reasoning item, usage", async () => {
      const msg = await chat().invoke("hi");
      expect(msg.id).toMatch(/^resp_/);
      expect(msg.text).toBe(ANSWER);
      expect(msg.additional_kwargs["reasoning"]).toMatchObject({ type: "reasoning", content: [{ type: "reasoning_text", text: THOUGHT }] });
      expect(msg.usage_metadata).toMatchObject({ output_tokens: PLAN.tokens.length });
      expect(msg.usage_metadata?.output_token_details?.reasoning).toBe(REASONING_TOKENS);
    });

    it("stream yields the answer in pieces that join to it exactly", async () => {
      let text = "";
      let chunks = 0;
      let id: string | undefined;
      for await (const chunk of await chat().stream("hi")) {
        text += chunk.text;
        if (chunk.text) chunks++;
        id ??= chunk.id;
      }
      expect(id).toMatch(/^resp_/);
      expect(text).toBe(ANSWER);
      expect(chunks).toBeGreaterThan(1);
    });
  });
});

describe("stored /v1/responses across a restart of the server", () => {
  let dataDir: string;
  let server: TestServer;
  let model: string;
  const clientOf = (s: TestServer) => new OpenAI({ baseURL: s.baseURL, apiKey: "unused", maxRetries: 0 });
  const raw = async (id: string) => {
    const res = await fetch(`${server.baseURL}/responses/${id}`);
    return { status: res.status, body: await res.json() };
  };
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "edgellm-resp-"));
    model = await scriptedModel(THINKING_SCRIPT);
    server = await startTestServer(model, { "server.dataDir": dataDir });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("GET returns the same response after the restart and previous_response_id continues it; store:false kept nothing", async () => {
    const first = await clientOf(server).responses.create({ model: server.modelId, input: "hi", instructions: "Be brief." });
    const unstored = await clientOf(server).responses.create({ model: server.modelId, input: "hi", store: false });
    const before = await raw(first.id);
    expect(before.status).toBe(200);
    await server.stop();
    server = await startTestServer(model, { "server.dataDir": dataDir });

    expect(await raw(first.id)).toEqual(before);
    expect((await raw(unstored.id)).status).toBe(404);
    const second = await clientOf(server).responses.create({ model: server.modelId, input: "And how are you?", previous_response_id: first.id });
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output_text).toBe(ANSWER);
    expect(second.usage!.input_tokens).toBe(await chatPromptTokens(server, { messages: SECOND_TURN }));
    const del = await fetch(`${server.baseURL}/responses/${first.id}`, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect((await raw(first.id)).status).toBe(404);
  });
});

describe("/v1/responses on a model that never stops", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true }), {
      "limits.maxConcurrentRequestsPerClient": 1,
    });
  });
  afterAll(() => server?.stop());

  it("counts against limits.maxConcurrentRequestsPerClient like chat", async () => {
    const stream = await openStream(`${server.baseURL}/responses`, { input: "count", stream: true, max_output_tokens: 900 });
    expect(stream.status).toBe(200);
    await stream.next();
    const second = await fetch(`${server.baseURL}/responses`, { method: "POST", body: JSON.stringify({ input: "count", max_output_tokens: 5 }) });
    expect(second.status).toBe(429);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe("too_many_concurrent_requests");
    stream.abort();
    await waitFor(() => fetch(`${server.baseURL}/responses`, { method: "POST", body: JSON.stringify({ input: "count", max_output_tokens: 5 }) }), (r) => r.status === 200);
  });

  it("closes the open item as incomplete and ends with response.failed carrying the error", async () => {
    const stream = await openStream(`${server.baseURL}/responses`, { input: "count", stream: true, max_output_tokens: 900 });
    expect(stream.status).toBe(200);
    const seen: Array<Record<string, unknown>> = [];
    while (seen.at(-1)?.["type"] !== "response.output_text.delta") seen.push(JSON.parse((await stream.next())!));
    process.kill(server.running.registry.list()[0]!.pid!, "SIGKILL");
    const rest = (await stream.rest()).map((d) => JSON.parse(d) as Record<string, unknown>);
    const types = rest.map((e) => e["type"]);
    expect(types.slice(-4)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.failed"]);
    const [itemDone, failed] = rest.slice(-2) as [{ item: { status: string } }, { response: Record<string, unknown> }];
    expect(itemDone.item.status).toBe("incomplete");
    expect(failed.response).toMatchObject({ status: "failed", error: { code: "worker_unavailable", message: expect.stringContaining("stopped unexpectedly") } });
    expect([...seen, ...rest].map((e) => e["sequence_number"])).toEqual([...seen, ...rest].map((_, i) => i));
  });
});
