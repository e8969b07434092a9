/**
 * Translates a Responses request into the chat request the rest of the server already runs
 * (normalization, grammar, limits), as llama-server does. Errors raised on the chat side name
 * chat fields; `asResponsesError` renames them to the Responses field the client sent.
 */
import type { ChatCompletionRequest, ChatMessage, FunctionTool } from "./schema.js";
import { SHARED_CHAT_FIELDS, type InputItem, type ResponsesContentPart, type ResponsesRequest, type ResponsesTextFormat, type ResponsesToolChoice } from "./responses-schema.js";
import { ApiError, invalidRequest } from "./errors.js";

const TEXT_PARTS = new Set(["input_text", "output_text", "text", "reasoning_text", "summary_text"]);

const missing = (param: string) => invalidRequest(`Missing required parameter: '${param}'`, param, "missing_required_parameter");

function textOf(content: string | ResponsesContentPart[], param: string): string {
  if (typeof content === "string") return content;
  return content
    .map((part, j) => {
      if (TEXT_PARTS.has(part.type)) {
        if (typeof part.text !== "string") throw missing(`${param}[${j}].text`);
        return part.text;
      }
      throw invalidRequest(`Content part type '${part.type}' is not supported by this model; only text parts are`, `${param}[${j}].type`, "unsupported_content_type");
    })
    .join("");
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The conversation items of `input`: a string is one user message. */
export function inputItems(input: ResponsesRequest["input"]): InputItem[] {
  return typeof input === "string" ? [{ type: "message", role: "user", content: input }] : input;
}

/** The reasoning a `reasoning` item carries: its full text when present, else its summary. */
function reasoningOf(item: InputItem, param: string): string {
  const content = item.content;
  if (Array.isArray(content) && content.length > 0) return textOf(content, `${param}.content`);
  return (item.summary ?? []).map((s, j) => textOf([s], `${param}.summary[${j}]`)).join("\n\n");
}

/**
 * Chat messages of a conversation. Consecutive function calls (and the text before them) are one
 * assistant turn, and a reasoning item becomes the reasoning of the assistant turn after it.
 * `firstNew` is the index of the first item the client sent in this request, so errors point into `input`.
 */
export function conversationMessages(items: InputItem[], firstNew: number): ChatMessage[] {
  const messages: ChatMessage[] = [];
  let reasoning: string | undefined;
  const assistantTurn = (content: string | null): ChatMessage => {
    const msg: ChatMessage = { role: "assistant", content };
    if (reasoning) msg.reasoning_content = reasoning;
    reasoning = undefined;
    messages.push(msg);
    return msg;
  };
  items.forEach((item, i) => {
    const param = `input[${i - firstNew}]`;
    const type = item.type ?? "message";
    switch (type) {
      case "message": {
        if (!item.role) throw missing(`${param}.role`);
        if (item.content === undefined) throw missing(`${param}.content`);
        const text = textOf(item.content, `${param}.content`);
        if (item.role === "assistant") assistantTurn(text);
        else {
          // Reasoning belongs to the assistant turn right after it; another turn between drops it.
          reasoning = undefined;
          messages.push({ role: item.role, content: text });
        }
        break;
      }
      case "reasoning":
        reasoning = (reasoning ? `${reasoning}\n\n` : "") + reasoningOf(item, param);
        break;
      case "function_call": {
        if (!item.call_id) throw missing(`${param}.call_id`);
        if (!item.name) throw missing(`${param}.name`);
        if (item.arguments === undefined) throw missing(`${param}.arguments`);
        if (!isJson(item.arguments)) throw invalidRequest("'arguments' must be JSON encoded as a string", `${param}.arguments`, "invalid_tool_arguments");
        const last = messages.at(-1);
        const turn = last?.role === "assistant" && !reasoning ? last : assistantTurn(null);
        (turn.tool_calls ??= []).push({ id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } });
        break;
      }
      case "function_call_output":
        if (!item.call_id) throw missing(`${param}.call_id`);
        if (item.output === undefined) throw missing(`${param}.output`);
        reasoning = undefined;
        messages.push({ role: "tool", tool_call_id: item.call_id, content: textOf(item.output, `${param}.output`) });
        break;
      default:
        throw invalidRequest(
          `Input item type '${type}' is not supported; use 'message', 'function_call', 'function_call_output' or 'reasoning'`,
          `${param}.type`,
          "unsupported_item_type",
        );
    }
  });
  return messages;
}

function chatTools(tools: NonNullable<ResponsesRequest["tools"]>): FunctionTool[] {
  return tools.map((t, i) => {
    if (t.type !== "function") {
      throw invalidRequest(
        `Tool type '${t.type}' is not supported: this server runs no built-in tools, only 'function' tools the client executes`,
        `tools[${i}].type`,
        "unsupported_tool_type",
      );
    }
    if (!t.name) throw missing(`tools[${i}].name`);
    return {
      type: "function",
      function: { name: t.name, description: t.description ?? undefined, parameters: t.parameters ?? undefined, strict: t.strict },
    };
  });
}

function chatToolChoice(choice: ResponsesToolChoice): ChatCompletionRequest["tool_choice"] {
  if (typeof choice === "string") return choice;
  if (choice.type !== "function") {
    throw invalidRequest(`tool_choice type '${choice.type}' is not supported; use 'none', 'auto', 'required' or {type: 'function', name}`, "tool_choice.type", "unsupported_tool_choice");
  }
  if (!choice.name) throw missing("tool_choice.name");
  return { type: "function", function: { name: choice.name } };
}

function chatResponseFormat(format: ResponsesTextFormat): ChatCompletionRequest["response_format"] {
  if (format.type !== "json_schema") return { type: format.type };
  return { type: "json_schema", json_schema: { name: format.name, description: format.description, schema: format.schema, strict: format.strict } };
}

/** The chat request for `body` over the whole conversation (earlier turns of previous_response_id included). */
export function toChatRequest(body: ResponsesRequest, conversation: InputItem[], firstNew: number): ChatCompletionRequest {
  const messages = conversationMessages(conversation, firstNew);
  // Instructions are not carried over from a previous response, as OpenAI documents.
  if (body.instructions) messages.unshift({ role: "system", content: body.instructions });
  if (messages.length === 0) throw invalidRequest("'input' holds no message for the model to answer", "input");
  const { tools, tool_choice, max_output_tokens, text } = body;
  const shared = Object.fromEntries(SHARED_CHAT_FIELDS.filter((k) => body[k] !== undefined).map((k) => [k, body[k]]));
  return {
    ...shared,
    messages,
    n: 1,
    max_tokens: max_output_tokens,
    tools: tools ? chatTools(tools) : undefined,
    tool_choice: tool_choice == null ? undefined : chatToolChoice(tool_choice),
    response_format: text?.format ? chatResponseFormat(text.format) : undefined,
  };
}

/** Chat field (as a prefix of an error's param) → the Responses field it came from. */
const RENAMES: Array<[RegExp, string]> = [
  [/^messages\b.*$/, "input"],
  [/^max_tokens$/, "max_output_tokens"],
  [/^tools(\[\d+\])\.function\b/, "tools$1"],
  [/^response_format\.(json_schema\.)?schema\b/, "text.format.schema"],
  [/^response_format\b/, "text.format"],
];

const rename = (param: string) => RENAMES.reduce((p, [from, to]) => p.replace(from, to), param);

/** An error raised on the chat path, with params (and quoted params in its message) in Responses terms. */
export function asResponsesError(err: unknown): unknown {
  if (!(err instanceof ApiError) || err.param === null) return err;
  const param = rename(err.param);
  if (param === err.param) return err;
  const message = err.message.replace(/'([^']+)'/g, (_m, quoted: string) => `'${rename(quoted)}'`);
  return new ApiError(err.status, err.type, message, { param, code: err.code, headers: err.headers });
}
