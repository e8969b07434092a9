/** Responses input → chat request translation, and the renaming of chat-side errors. */
import { describe, it, expect } from "vitest";
import { asResponsesError, conversationMessages, toChatRequest } from "../../src/openai/responses-input.js";
import { ApiError, invalidRequest } from "../../src/openai/errors.js";
import type { InputItem, ResponsesRequest } from "../../src/openai/responses-schema.js";

describe("conversationMessages", () => {
  it("makes parallel calls and the text before them one assistant turn, carrying the reasoning before it", () => {
    const items: InputItem[] = [
      { role: "user", content: "Weather in Paris and Rome?" },
      { type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: "Two cities." }] },
      { type: "message", role: "assistant", content: [{ type: "output_text", text: "Checking." }] },
      { type: "function_call", call_id: "c1", name: "w", arguments: '{"city":"Paris"}' },
      { type: "function_call", call_id: "c2", name: "w", arguments: '{"city":"Rome"}' },
      { type: "function_call_output", call_id: "c1", output: "18" },
      { type: "function_call_output", call_id: "c2", output: [{ type: "input_text", text: "2" }, { type: "input_text", text: "1" }] },
    ];
    expect(conversationMessages(items, 0)).toEqual([
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: "Checking.",
        reasoning_content: "Two cities.",
        tool_calls: [
          { id: "c1", type: "function", function: { name: "w", arguments: '{"city":"Paris"}' } },
          { id: "c2", type: "function", function: { name: "w", arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: "tool", tool_call_id: "c1", content: "18" },
      { role: "tool", tool_call_id: "c2", content: "21" },
    ]);
  });

  it("uses a reasoning item's summary when it has no reasoning text; a call after a tool result starts a new turn", () => {
    const items: InputItem[] = [
      { role: "user", content: "q" },
      { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
      { type: "function_call_output", call_id: "c1", output: "r" },
      { type: "reasoning", summary: [{ type: "summary_text", text: "Need more." }] },
      { type: "function_call", call_id: "c2", name: "f", arguments: "{}" },
    ];
    const messages = conversationMessages(items, 0);
    expect(messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant"]);
    expect(messages[3]).toMatchObject({ reasoning_content: "Need more.", tool_calls: [{ id: "c2" }] });
  });

  it("drops reasoning that no assistant turn follows", () => {
    const items: InputItem[] = [
      { type: "reasoning", summary: [], content: [{ type: "reasoning_text", text: "Stray." }] },
      { role: "user", content: "q" },
      { role: "assistant", content: "a" },
    ];
    expect(conversationMessages(items, 0)).toEqual([{ role: "user", content: "q" }, { role: "assistant", content: "a" }]);
  });

  it("names items by their index in this request's input, after the stored conversation", () => {
    const stored: InputItem[] = [{ role: "user", content: "a" }, { role: "assistant", content: "b" }];
    const fresh: InputItem[] = [{ type: "function_call", name: "f", arguments: "{}" }];
    expect(() => conversationMessages([...stored, ...fresh], stored.length)).toThrow(
      expect.objectContaining({ param: "input[0].call_id", code: "missing_required_parameter" }),
    );
  });
});

describe("toChatRequest", () => {
  const base: ResponsesRequest = { input: "hi" };

  it("maps Responses fields onto chat's: tools, tool_choice, text.format, max_output_tokens, instructions first", () => {
    const chat = toChatRequest(
      {
        ...base,
        instructions: "Be brief.",
        tools: [{ type: "function", name: "f", description: null, parameters: { type: "object" }, strict: true }],
        tool_choice: { type: "function", name: "f" },
        text: { format: { type: "json_schema", name: "out", schema: { type: "object" }, strict: true } },
        max_output_tokens: 50,
        temperature: 0.2,
        top_k: 5,
        reasoning: { effort: "none" },
      },
      [{ role: "user", content: "hi" }],
      0,
    );
    expect(chat).toEqual({
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }],
      n: 1,
      max_tokens: 50,
      temperature: 0.2,
      top_k: 5,
      reasoning: { effort: "none" },
      tools: [{ type: "function", function: { name: "f", description: undefined, parameters: { type: "object" }, strict: true } }],
      tool_choice: { type: "function", function: { name: "f" } },
      response_format: { type: "json_schema", json_schema: { name: "out", description: undefined, schema: { type: "object" }, strict: true } },
    });
    expect(toChatRequest({ ...base, text: { format: { type: "json_object" } } }, [{ role: "user", content: "x" }], 0).response_format).toEqual({ type: "json_object" });
  });

  it("refuses an input with nothing to answer", () => {
    expect(() => toChatRequest(base, [{ type: "reasoning", summary: [] }], 0)).toThrow(expect.objectContaining({ param: "input" }));
  });
});

describe("asResponsesError", () => {
  it("renames chat params, also where the message quotes them", () => {
    const renamed = asResponsesError(
      invalidRequest("JSON Schema keyword 'pattern' at 'tools[1].function.parameters.properties.zip' is not supported", "tools[1].function.parameters.properties.zip.pattern", "unsupported_schema"),
    ) as ApiError;
    expect(renamed.param).toBe("tools[1].parameters.properties.zip.pattern");
    expect(renamed.message).toBe("JSON Schema keyword 'pattern' at 'tools[1].parameters.properties.zip' is not supported");
    expect(renamed.code).toBe("unsupported_schema");
    expect((asResponsesError(invalidRequest("x", "response_format.json_schema.schema.type")) as ApiError).param).toBe("text.format.schema.type");
    expect((asResponsesError(invalidRequest("'max_tokens' is 9", "max_tokens")) as ApiError).message).toBe("'max_output_tokens' is 9");
    expect((asResponsesError(invalidRequest("too long", "messages")) as ApiError).param).toBe("input");
  });

  it("leaves other errors as they are", () => {
    const err = invalidRequest("bad", "tool_choice");
    expect(asResponsesError(err)).toBe(err);
    const plain = new Error("x");
    expect(asResponsesError(plain)).toBe(plain);
  });
});
