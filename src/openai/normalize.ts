/** Turns a validated OpenAI chat request into the engine's GenerationRequest. Pure. */
import type { ChatCompletionRequest, ChatMessage, CompletionRequest, FunctionTool } from "./schema.js";
import type { GenerationRequest, GrammarSpec, TemplateMessage, ToolSpec } from "../engine/types.js";
import type { Config } from "../config/schema.js";
import { invalidRequest } from "./errors.js";
import { ANY_OBJECT, toGrammarSchema } from "./json-schema.js";

/** Request fields this server understands; anything else is accepted and logged at debug. */
export const KNOWN_CHAT_FIELDS = new Set([
  "model", "lora", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed",
  "stop", "presence_penalty", "frequency_penalty", "repeat_penalty", "n", "stream", "stream_options", "user",
  "tools", "tool_choice", "parallel_tool_calls", "response_format", "enable_thinking", "chat_template_kwargs",
  "reasoning_effort", "reasoning", "return_reasoning", "include_reasoning", "reasoning_format", "thinking_budget",
  "thinking_budget_tokens", "thinking_token_budget", "logprobs", "top_logprobs", "keep_alive",
]);

export const KNOWN_COMPLETION_FIELDS = new Set([
  "model", "lora", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "presence_penalty",
  "frequency_penalty", "repeat_penalty", "n", "stream", "stream_options", "user", "echo", "logprobs", "suffix", "best_of", "keep_alive",
]);

export function unknownFields(body: object, known: ReadonlySet<string> = KNOWN_CHAT_FIELDS): string[] {
  return Object.keys(body).filter((k) => !known.has(k));
}

function textOf(content: ChatMessage["content"], param: string): string {
  if (content == null) return "";
  if (typeof content === "string") return content;
  return content
    .map((part, i) => {
      if (part.type !== "text" || typeof part.text !== "string") {
        throw invalidRequest(`Content part type '${part.type}' is not supported by this model; only 'text' parts are`, `${param}[${i}].type`, "unsupported_content_type");
      }
      return part.text;
    })
    .join("");
}

function normalizeArguments(args: string | Record<string, unknown>, param: string): unknown {
  if (typeof args !== "string") return args;
  try {
    return JSON.parse(args);
  } catch {
    throw invalidRequest("Tool call arguments must be a JSON object encoded as a string", param, "invalid_tool_arguments");
  }
}

export function normalizeMessages(messages: ChatMessage[]): TemplateMessage[] {
  return messages.map((m, i): TemplateMessage => {
    const param = `messages[${i}]`;
    const role = m.role === "developer" ? "system" : m.role;
    const out: TemplateMessage = { role, content: textOf(m.content, `${param}.content`) };
    if (m.name) out.name = m.name;
    if (role === "tool") {
      if (!m.tool_call_id) throw invalidRequest("Messages with role 'tool' need a 'tool_call_id'", `${param}.tool_call_id`, "missing_required_parameter");
      out.tool_call_id = m.tool_call_id;
    }
    if (role === "assistant") {
      const reasoning = m.reasoning_content ?? m.reasoning;
      if (reasoning) out.reasoning_content = reasoning;
      if (m.tool_calls?.length) {
        out.tool_calls = m.tool_calls.map((tc, j) => ({
          id: tc.id ?? `call_${i}_${j}`,
          type: "function" as const,
          function: { name: tc.function.name, arguments: normalizeArguments(tc.function.arguments, `${param}.tool_calls[${j}].function.arguments`) },
        }));
      }
    } else if (m.content == null) {
      throw invalidRequest(`Messages with role '${m.role}' need 'content'`, `${param}.content`, "missing_required_parameter");
    }
    return out;
  });
}

/** The thinking switch from any of the spellings clients use; undefined = server default. */
export function thinkingSwitch(body: ChatCompletionRequest): boolean | undefined {
  const kw = body.chat_template_kwargs?.["enable_thinking"];
  if (kw !== undefined && typeof kw !== "boolean") {
    throw invalidRequest("'chat_template_kwargs.enable_thinking' must be a boolean", "chat_template_kwargs.enable_thinking", "invalid_type");
  }
  const effort = body.reasoning_effort ?? body.reasoning?.effort;
  return kw ?? body.enable_thinking ?? (effort === undefined ? undefined : effort !== "none");
}

/** Names the template engine defines itself or that the server sets: a client may not redefine them. */
const RESERVED_TEMPLATE_NAMES = new Set([
  "messages", "tools", "add_generation_prompt", "bos_token", "eos_token",
  "raise_exception", "range", "strftime_now", "namespace", "none", "None", "true", "True", "false", "False",
]);

type SamplingFields = Pick<
  ChatCompletionRequest,
  "temperature" | "top_p" | "top_k" | "min_p" | "seed" | "presence_penalty" | "frequency_penalty" | "repeat_penalty" | "stop"
>;

function stopStrings(body: SamplingFields): string[] {
  const stop = body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop;
  if (stop.some((s) => s.length === 0)) throw invalidRequest("Stop strings must not be empty", "stop");
  return stop;
}

function samplingParams(body: SamplingFields): GenerationRequest["sampling"] {
  return {
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    seed: body.seed ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    repeatPenalty: body.repeat_penalty ?? undefined,
  };
}

/** Chat logprobs: `top_logprobs` alternatives, and only with `logprobs: true` (as OpenAI requires). */
function chatLogprobs(body: ChatCompletionRequest): number | undefined {
  if (body.top_logprobs != null && body.logprobs !== true) {
    throw invalidRequest("'top_logprobs' needs 'logprobs' set to true", "top_logprobs");
  }
  return body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
}

export function normalizeChatRequest(body: ChatCompletionRequest, requestId: string): GenerationRequest {
  const stop = stopStrings(body);
  const templateKwargs = { ...(body.chat_template_kwargs ?? {}) };
  delete templateKwargs["enable_thinking"];
  for (const key of Object.keys(templateKwargs)) {
    if (RESERVED_TEMPLATE_NAMES.has(key)) {
      throw invalidRequest(`'chat_template_kwargs.${key}' cannot be set: the name is reserved by the chat template`, `chat_template_kwargs.${key}`);
    }
  }
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const tools: ToolSpec[] | undefined = body.tools?.length
    ? body.tools.map((t) => ({
        type: "function",
        function: { name: t.function.name, description: t.function.description, parameters: t.function.parameters },
      }))
    : undefined;
  const req: GenerationRequest = {
    requestId,
    messages: normalizeMessages(body.messages),
    tools,
    templateKwargs,
    enableThinking: thinkingSwitch(body),
    maxTokens,
    thinkingBudget: body.thinking_budget ?? body.thinking_budget_tokens ?? body.thinking_token_budget ?? undefined,
    grammar: grammarSpec(body),
    sampling: samplingParams(body),
    stop,
  };
  const logprobs = chatLogprobs(body);
  if (logprobs !== undefined) req.logprobs = logprobs;
  return req;
}

/** OpenAI's and vLLM's default for /v1/completions when `max_tokens` is left out. */
const COMPLETION_DEFAULT_MAX_TOKENS = 16;

/** The prompts of a completion request, one generation each (times `n`). */
export function completionPrompts(prompt: CompletionRequest["prompt"]): Array<string | number[]> {
  if (typeof prompt === "string") return [prompt];
  const first = prompt[0];
  return typeof first === "number" ? [prompt as number[]] : (prompt as string[] | number[][]);
}

/**
 * A completion request as the engine's raw-prompt request (with `prompt` left for each prompt).
 * What this server does not do is refused by name: `suffix` (as vLLM does), `best_of` > 1, and
 * `echo` with `logprobs` (the prompt's own log-probabilities are not computed).
 */
export function normalizeCompletionRequest(body: CompletionRequest, requestId: string): GenerationRequest {
  if (body.suffix != null) throw invalidRequest("'suffix' is not supported: this server does not do fill-in-the-middle", "suffix", "unsupported_parameter");
  if (body.best_of != null && body.best_of > 1) {
    throw invalidRequest("'best_of' greater than 1 is not supported; use 'n' for several completions", "best_of", "unsupported_parameter");
  }
  if (body.echo === true && body.logprobs != null) {
    throw invalidRequest("'echo' with 'logprobs' is not supported: the prompt's own log-probabilities are not computed", "echo", "unsupported_parameter");
  }
  const req: GenerationRequest = {
    requestId,
    messages: [],
    templateKwargs: {},
    maxTokens: body.max_tokens === undefined ? COMPLETION_DEFAULT_MAX_TOKENS : (body.max_tokens ?? undefined),
    sampling: samplingParams(body),
    stop: stopStrings(body),
  };
  if (body.logprobs != null) req.logprobs = body.logprobs;
  return req;
}

/** The tools `required` or a named tool_choice forces, with their index in `tools`. */
function forcedTools(body: ChatCompletionRequest): Array<[FunctionTool, number]> | undefined {
  const choice = body.tool_choice;
  if (choice == null || choice === "auto" || choice === "none") return undefined;
  const tools = (body.tools ?? []).map((t, i): [FunctionTool, number] => [t, i]);
  if (choice === "required") {
    if (tools.length === 0) throw invalidRequest("tool_choice 'required' needs at least one tool in 'tools'", "tool_choice");
    return tools;
  }
  const named = tools.filter(([t]) => t.function.name === choice.function.name);
  if (named.length === 0) {
    throw invalidRequest(`tool_choice names the function '${choice.function.name}', which is not in 'tools'`, "tool_choice");
  }
  return named;
}

/**
 * What the answer must look like. `required` and a named tool_choice force tool calls whose
 * arguments follow each tool's parameters; response_format forces JSON. With tool_choice `auto`
 * and a response_format the model may still call a tool instead of replying (any arguments: auto
 * stays free); `auto` alone is not constrained at all.
 */
export function grammarSpec(body: ChatCompletionRequest): GrammarSpec | undefined {
  const forced = forcedTools(body);
  if (forced) {
    return {
      toolCalls: {
        tools: forced.map(([t, i]) => ({
          name: t.function.name,
          // No parameters: OpenAI calls the function with an empty object.
          parameters: toGrammarSchema(t.function.parameters ?? { type: "object", properties: {} }, `tools[${i}].function.parameters`),
        })),
        // A named function is called once, as OpenAI does; `required` may call several.
        parallel: typeof body.tool_choice !== "object" && (body.parallel_tool_calls ?? true),
      },
    };
  }
  const format = body.response_format;
  if (!format || format.type === "text") return undefined;
  const json =
    format.type === "json_object"
      ? format.schema ? toGrammarSchema(format.schema, "response_format.schema") : ANY_OBJECT
      : format.json_schema.schema ? toGrammarSchema(format.json_schema.schema, "response_format.json_schema.schema") : ANY_OBJECT;
  const tools = body.tool_choice === "none" ? [] : (body.tools ?? []);
  if (tools.length === 0) return { json };
  return {
    json,
    toolCalls: { tools: tools.map((t) => ({ name: t.function.name, parameters: ANY_OBJECT })), parallel: body.parallel_tool_calls ?? true },
  };
}

/** How the answer is presented: decided in the API layer, never sent to a worker. */
export interface ResponseOptions {
  /** Send the reasoning at all (return_reasoning / include_reasoning). */
  returnReasoning: boolean;
  /** "separate": its own field; "inline": `<think>…</think>` inside content. */
  reasoningFormat: "separate" | "inline";
  /** Fill `reasoning` (vLLM / Ollama) next to `reasoning_content`. */
  reasoningAlias: boolean;
  /**
   * Parse `<tool_call>` blocks in the answer into tool calls: tools were given and tool_choice is
   * not `none`. With tool_choice `none` the tools are still shown to the model (as llama.cpp and
   * vLLM do) but whatever it writes stays text.
   */
  toolCalls: false | { parallel: boolean };
}

export function responseOptions(body: ChatCompletionRequest, defaults: Pick<Config["generation"], "reasoningFormat" | "reasoningAlias">): ResponseOptions {
  const parse = (body.tools?.length ?? 0) > 0 && body.tool_choice !== "none";
  return {
    returnReasoning: body.return_reasoning ?? body.include_reasoning ?? true,
    reasoningFormat: body.reasoning_format ?? defaults.reasoningFormat,
    reasoningAlias: defaults.reasoningAlias,
    toolCalls: parse && { parallel: typeof body.tool_choice !== "object" && (body.parallel_tool_calls ?? true) },
  };
}
