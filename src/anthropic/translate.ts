/**
 * Anthropic Messages requests in the OpenAI chat shape, so they take the chat path from there
 * (normalization, template, grammar for forced tools, the assembler). Pure.
 */
import type { ChatCompletionRequest, ChatMessage, TextPart } from "../openai/schema.js";
import { invalidRequest } from "../openai/errors.js";
import type { ContentBlock, CountTokensRequest, Message, MessagesRequest } from "./schema.js";

type Block<T extends ContentBlock["type"]> = Extract<ContentBlock, { type: T }>;

function unsupported(type: string, param: string): never {
  throw invalidRequest(`Content block type '${type}' is not supported: this model reads text only`, `${param}.type`, "unsupported_content_type");
}

function toolResultText(block: Block<"tool_result">, param: string): string {
  const content = block.content ?? "";
  const text = typeof content === "string" ? content : content.map((b, i) => (b.type === "text" ? b.text : unsupported(b.type, `${param}.content[${i}]`))).join("");
  // The chat template has no error flag for tool results: the model learns of the failure from the text.
  return block.is_error ? `Error: ${text}` : text;
}

/** A user turn: its tool results become tool messages, its text runs user messages, in their order. */
function userMessages(blocks: ContentBlock[], param: string): ChatMessage[] {
  const out: ChatMessage[] = [];
  let text: TextPart[] = [];
  const flush = () => {
    if (text.length > 0) out.push({ role: "user", content: text });
    text = [];
  };
  blocks.forEach((b, j) => {
    const at = `${param}.content[${j}]`;
    if (b.type === "text") text.push({ type: "text", text: b.text });
    else if (b.type === "tool_result") {
      flush();
      out.push({ role: "tool", tool_call_id: b.tool_use_id, content: toolResultText(b, at) });
    } else unsupported(b.type, at);
  });
  flush();
  return out;
}

function assistantMessage(blocks: ContentBlock[], param: string): ChatMessage {
  const text: TextPart[] = [];
  let reasoning = "";
  const calls: NonNullable<ChatMessage["tool_calls"]> = [];
  blocks.forEach((b, j) => {
    switch (b.type) {
      case "text":
        text.push({ type: "text", text: b.text });
        break;
      case "thinking":
        reasoning += b.thinking;
        break;
      case "tool_use":
        calls.push({ id: b.id, type: "function", function: { name: b.name, arguments: b.input } });
        break;
      case "redacted_thinking":
        // Another model's encrypted thought: nothing this model can read.
        break;
      default:
        unsupported(b.type, `${param}.content[${j}]`);
    }
  });
  return { role: "assistant", content: text, ...(reasoning && { reasoning_content: reasoning }), ...(calls.length > 0 && { tool_calls: calls }) };
}

function chatMessages(m: Message, i: number): ChatMessage[] {
  if (typeof m.content === "string") return [{ role: m.role, content: m.content }];
  const param = `messages[${i}]`;
  return m.role === "user" ? userMessages(m.content, param) : [assistantMessage(m.content, param)];
}

function toolChoice(choice: CountTokensRequest["tool_choice"]): Pick<ChatCompletionRequest, "tool_choice" | "parallel_tool_calls"> {
  if (!choice) return {};
  const parallel = "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use ? { parallel_tool_calls: false } : {};
  switch (choice.type) {
    case "auto":
      return { tool_choice: "auto", ...parallel };
    case "any":
      return { tool_choice: "required", ...parallel };
    case "tool":
      return { tool_choice: { type: "function", function: { name: choice.name } }, ...parallel };
    case "none":
      return { tool_choice: "none" };
  }
}

/** `enabled` turns Qwen3 thinking on with the budget as the engine's thinking budget; absent leaves the server default. */
function thinking(config: CountTokensRequest["thinking"]): Pick<ChatCompletionRequest, "enable_thinking" | "thinking_budget"> {
  if (!config) return {};
  if (config.type === "disabled") return { enable_thinking: false };
  return { enable_thinking: true, ...(config.type === "enabled" && { thinking_budget: config.budget_tokens }) };
}

/** The prompt part of a request: enough for /v1/messages/count_tokens. */
export function toChatPrompt(body: CountTokensRequest): ChatCompletionRequest {
  const system: ChatMessage[] = body.system === undefined ? [] : [{ role: "system", content: body.system }];
  return {
    ...(body.model !== undefined && { model: body.model }),
    messages: [...system, ...body.messages.flatMap(chatMessages)],
    ...(body.tools?.length && {
      tools: body.tools.map((t) => ({ type: "function" as const, function: { name: t.name, description: t.description, parameters: t.input_schema } })),
    }),
    ...toolChoice(body.tool_choice),
    ...thinking(body.thinking),
  };
}

export function toChatRequest(body: MessagesRequest): ChatCompletionRequest {
  return {
    ...toChatPrompt(body),
    max_tokens: body.max_tokens,
    ...(body.stop_sequences && { stop: body.stop_sequences }),
    ...(body.temperature !== undefined && { temperature: body.temperature }),
    ...(body.top_p !== undefined && { top_p: body.top_p }),
    ...(body.top_k !== undefined && { top_k: body.top_k }),
    ...(body.stream !== undefined && { stream: body.stream }),
  };
}
