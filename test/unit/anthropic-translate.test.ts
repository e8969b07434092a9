import { describe, expect, it } from "vitest";
import { toChatPrompt, toChatRequest } from "../../src/anthropic/translate.js";
import type { MessagesRequest } from "../../src/anthropic/schema.js";
import { ApiError } from "../../src/openai/errors.js";

const request = (extra: Partial<MessagesRequest> = {}): MessagesRequest => ({ max_tokens: 100, messages: [{ role: "user", content: "hi" }], ...extra });

const thrown = (f: () => unknown): ApiError => {
  try {
    f();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError");
};

describe("Anthropic requests as chat requests", () => {
  it("puts the system prompt first and keeps the sampling fields", () => {
    const chat = toChatRequest(request({ system: "Be brief.", stop_sequences: ["END"], temperature: 0.5, top_p: 0.9, top_k: 10, stream: true }));
    expect(chat).toEqual({
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }],
      max_tokens: 100,
      stop: ["END"],
      temperature: 0.5,
      top_p: 0.9,
      top_k: 10,
      stream: true,
    });
  });

  it("splits a user turn into tool messages and user text, in order; is_error marks the result", () => {
    const chat = toChatPrompt({
      messages: [
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "18 degrees" },
            { type: "tool_result", tool_use_id: "toolu_2", content: [{ type: "text", text: "no such city" }], is_error: true },
            { type: "text", text: "and " },
            { type: "text", text: "tomorrow?" },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      { role: "tool", tool_call_id: "toolu_1", content: "18 degrees" },
      { role: "tool", tool_call_id: "toolu_2", content: "Error: no such city" },
      { role: "user", content: [{ type: "text", text: "and " }, { type: "text", text: "tomorrow?" }] },
    ]);
  });

  it("turns assistant blocks into content, reasoning and tool calls; redacted thinking is dropped", () => {
    const chat = toChatPrompt({
      messages: [
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "Weather, so a tool." },
            { type: "redacted_thinking", data: "opaque" },
            { type: "text", text: "Let me check." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
          ],
        },
      ],
    });
    expect(chat.messages).toEqual([
      {
        role: "assistant",
        content: [{ type: "text", text: "Let me check." }],
        reasoning_content: "Weather, so a tool.",
        tool_calls: [{ id: "toolu_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
    ]);
  });

  it("answers non-text blocks with a 400 naming the block", () => {
    const err = thrown(() => toChatPrompt({ messages: [{ role: "user", content: [{ type: "text", text: "see" }, { type: "image" }] }] }));
    expect(err).toMatchObject({ status: 400, param: "messages[0].content[1].type", code: "unsupported_content_type" });
    const nested = thrown(() =>
      toChatPrompt({ messages: [{ role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: [{ type: "document" }] }] }] }),
    );
    expect(nested.param).toBe("messages[0].content[0].content[0].type");
  });

  it("maps thinking onto the thinking switch and budget", () => {
    expect(toChatPrompt({ messages: [], thinking: { type: "enabled", budget_tokens: 64 } })).toMatchObject({ enable_thinking: true, thinking_budget: 64 });
    expect(toChatPrompt({ messages: [], thinking: { type: "adaptive" } })).toMatchObject({ enable_thinking: true });
    expect(toChatPrompt({ messages: [], thinking: { type: "adaptive" } })).not.toHaveProperty("thinking_budget");
    expect(toChatPrompt({ messages: [], thinking: { type: "disabled" } })).toMatchObject({ enable_thinking: false });
    expect(toChatPrompt({ messages: [] })).not.toHaveProperty("enable_thinking");
  });

  it("maps tools and every tool_choice", () => {
    const tools = [{ name: "f", description: "does f", input_schema: { type: "object" } }];
    const prompt = (tool_choice: MessagesRequest["tool_choice"]) => toChatPrompt({ messages: [], tools, ...(tool_choice && { tool_choice }) });
    expect(prompt(undefined).tools).toEqual([{ type: "function", function: { name: "f", description: "does f", parameters: { type: "object" } } }]);
    expect(prompt({ type: "auto" })).toMatchObject({ tool_choice: "auto" });
    expect(prompt({ type: "any" })).toMatchObject({ tool_choice: "required" });
    expect(prompt({ type: "any", disable_parallel_tool_use: true })).toMatchObject({ tool_choice: "required", parallel_tool_calls: false });
    expect(prompt({ type: "tool", name: "f" })).toMatchObject({ tool_choice: { type: "function", function: { name: "f" } } });
    expect(prompt({ type: "none" })).toMatchObject({ tool_choice: "none" });
    expect(prompt({ type: "auto" })).not.toHaveProperty("parallel_tool_calls");
  });
});
