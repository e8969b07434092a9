/**
 * response_format end to end on a scripted model that answers in JSON after a thought: the
 * grammar must leave conforming output alone, force conforming output when the model strays,
 * and reject schemas it cannot enforce before generating.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { ChatOpenAI } from "@langchain/openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { collect } from "../helpers/chat.js";

type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string };

const THOUGHT = "The user wants a trip plan as JSON.";
const TRIP = { city: "Paris", days: 3, tags: ["food", "art"] };
const TRIP_TEXT = '{"city": "Paris", "days": 3, "tags": ["food", "art"]}';
const TRIP_SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, days: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
  required: ["city", "days", "tags"],
  additionalProperties: false,
};

describe("structured output on a scripted model", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([{ token: "<think>" }, `\n${THOUGHT}\n`, { token: "</think>" }, `\n\n${TRIP_TEXT}`]));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const ask = async (extra: Partial<Params> & Record<string, unknown>) => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "Plan a trip, as JSON." }], ...extra } as Params);
    return { res, message: res.choices[0]!.message as Message };
  };
  const jsonSchema = (schema: object, strict = true) => ({ type: "json_schema" as const, json_schema: { name: "trip", schema: schema as Record<string, unknown>, strict } });

  it("json_object leaves a JSON answer as it is", async () => {
    const { res, message } = await ask({ response_format: { type: "json_object" }, enable_thinking: false });
    expect(message.content).toBe(TRIP_TEXT);
    expect(res.choices[0]!.finish_reason).toBe("stop");
  });

  it("json_schema (strict) leaves a conforming answer as it is, after a free thought", async () => {
    const { message } = await ask({ response_format: jsonSchema(TRIP_SCHEMA) });
    expect(message.reasoning_content).toBe(THOUGHT);
    expect(message.content).toBe(TRIP_TEXT);
    const off = await ask({ response_format: jsonSchema(TRIP_SCHEMA, false), enable_thinking: false });
    expect(JSON.parse(off.message.content!)).toEqual(TRIP);
  });

  it("streams the constrained answer", async () => {
    const out = await collect(
      await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "Plan a trip." }], response_format: jsonSchema(TRIP_SCHEMA), stream: true }),
    );
    expect(out.reasoning).toBe(THOUGHT);
    expect(out.content).toBe(TRIP_TEXT);
  });

  it.each([
    ["thinking off", false],
    ["after a free thought", true],
  ])("json_schema forces a conforming answer when the model writes something else (%s)", async (_name, thinking) => {
    const schema = { type: "object", properties: { approved: { type: "boolean" }, level: { enum: ["low", "high"] } }, required: ["approved", "level"], additionalProperties: false };
    const { res, message } = await ask({ response_format: jsonSchema(schema), enable_thinking: thinking, max_tokens: 100 });
    expect(res.choices[0]!.finish_reason).toBe("stop");
    const value = JSON.parse(message.content!) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(["approved", "level"]);
    expect(typeof value["approved"]).toBe("boolean");
    expect(["low", "high"]).toContain(value["level"]);
    if (thinking) expect(message.reasoning_content).toBe(THOUGHT);
  });

  it.each([
    ["pattern", { type: "object", properties: { city: { type: "string", pattern: "^[A-Z]" } } }, "response_format.json_schema.schema.properties.city.pattern"],
    ["minimum", { type: "object", properties: { days: { type: "integer", minimum: 1 } } }, "response_format.json_schema.schema.properties.days.minimum"],
    ["$ref", { type: "object", properties: { next: { $ref: "#" } } }, "response_format.json_schema.schema.properties.next.$ref"],
  ])("a schema using '%s' is a 400 naming the keyword, before anything is generated", async (keyword, schema, param) => {
    const err = await ask({ response_format: jsonSchema(schema) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("unsupported_schema");
    expect((err as Error).message).toContain(`'${keyword}'`);
  });

  it("a streaming request with an unsupported schema fails as plain HTTP, not inside the stream", async () => {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "hi" }], stream: true, response_format: jsonSchema({ type: "object", not: {} }) }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/json");
  });

  describe("LangChain withStructuredOutput", () => {
    const chat = (fields: ConstructorParameters<typeof ChatOpenAI>[0] = {}) =>
      new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0, ...fields });

    it("json_schema (the default method) returns the parsed object, with the reasoning on the raw message", async () => {
      const structured = chat().withStructuredOutput(TRIP_SCHEMA, { name: "trip", includeRaw: true });
      const { raw, parsed } = await structured.invoke("Plan a trip.");
      expect(parsed).toEqual(TRIP);
      expect(raw.additional_kwargs.reasoning_content).toBe(THOUGHT);
    });

    it("jsonMode (response_format json_object) returns the parsed object", async () => {
      const structured = chat({ modelKwargs: { enable_thinking: false } }).withStructuredOutput(TRIP_SCHEMA, { name: "trip", method: "jsonMode" });
      expect(await structured.invoke("Plan a trip, as JSON.")).toEqual(TRIP);
    });
  });
});
