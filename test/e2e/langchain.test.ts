/** End to end with @langchain/openai's ChatOpenAI pointed at the real server. */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { ChatOpenAI } from "@langchain/openai";
import { HumanMessage, SystemMessage } from "@langchain/core/messages";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const SCRIPT = "LangChain users get this exact answer, streamed or not.";

describe("LangChain ChatOpenAI", () => {
  let server: TestServer;
  let chat: ChatOpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]));
    chat = new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("invoke returns the content and usage metadata", async () => {
    const msg = await chat.invoke([new SystemMessage("Be brief."), new HumanMessage("hi")]);
    expect(msg.content).toBe(SCRIPT);
    expect(msg.usage_metadata?.output_tokens).toBeGreaterThan(5);
    expect(msg.usage_metadata?.total_tokens).toBe(msg.usage_metadata!.input_tokens + msg.usage_metadata!.output_tokens);
    expect(msg.response_metadata.finish_reason).toBe("stop");
  });

  it("stream yields the content in several chunks, with usage (streamUsage is on by default)", async () => {
    const chunks = [];
    for await (const c of await chat.stream("hi")) chunks.push(c);
    expect(chunks.map((c) => c.content).join("")).toBe(SCRIPT);
    expect(chunks.filter((c) => c.content).length).toBeGreaterThan(3);
    const withUsage = chunks.filter((c) => c.usage_metadata);
    expect(withUsage.length).toBeGreaterThan(0);
    expect(withUsage.at(-1)!.usage_metadata!.output_tokens).toBeGreaterThan(5);
  });

  it("stop sequences and maxTokens pass through", async () => {
    const msg = await chat.withConfig({ stop: ["exact"] }).invoke("hi");
    expect(msg.content).toBe("LangChain users get this ");
    const short = new ChatOpenAI({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxTokens: 3, maxRetries: 0 });
    const cut = await short.invoke("hi");
    expect(cut.response_metadata.finish_reason).toBe("length");
    expect(cut.usage_metadata?.output_tokens).toBe(3);
  });
});
