/**
 * Wire schemas for the OpenAI-compatible endpoints. TypeBox gives Fastify's validator and our
 * static types from one source. Optional fields also accept `null`, which several clients send
 * for "unset". Unknown fields are allowed (every anchor server accepts them).
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

const Nullable = <T extends TSchema>(t: T, description: string) =>
  Type.Optional(Type.Union([t, Type.Null()], { description }));

const TextPart = Type.Object({ type: Type.Literal("text"), text: Type.String() });
const ContentPart = Type.Object({ type: Type.String(), text: Type.Optional(Type.String()) }, { additionalProperties: true });

export const MessageContent = Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()], {
  description: "a string, an array of content parts, or null",
});

const ToolCall = Type.Object(
  {
    id: Type.Optional(Type.String()),
    type: Type.Optional(Type.Literal("function")),
    index: Type.Optional(Type.Integer()),
    function: Type.Object({ name: Type.String(), arguments: Type.Union([Type.String(), Type.Record(Type.String(), Type.Unknown())]) }),
  },
  { description: "a tool call object with a function name and arguments" },
);

export const ChatMessage = Type.Object(
  {
    role: Type.Union(
      [Type.Literal("system"), Type.Literal("developer"), Type.Literal("user"), Type.Literal("assistant"), Type.Literal("tool")],
      { description: "one of 'system', 'developer', 'user', 'assistant', 'tool'" },
    ),
    content: Type.Optional(MessageContent),
    name: Nullable(Type.String(), "a string"),
    tool_calls: Nullable(Type.Array(ToolCall), "an array of tool calls"),
    tool_call_id: Nullable(Type.String(), "a string"),
    reasoning_content: Nullable(Type.String(), "a string"),
    reasoning: Nullable(Type.String(), "a string"),
  },
  { description: "a message object with a role" },
);
export type ChatMessage = Static<typeof ChatMessage>;
export type TextPart = Static<typeof TextPart>;

const FunctionTool = Type.Object(
  {
    type: Type.Literal("function"),
    function: Type.Object({
      name: Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9_.:-]+$" }),
      description: Type.Optional(Type.String()),
      parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      strict: Nullable(Type.Boolean(), "a boolean"),
    }),
  },
  { description: "a function tool: {type: 'function', function: {name, description, parameters}}" },
);
export type FunctionTool = Static<typeof FunctionTool>;

const ToolChoice = Type.Union(
  [
    Type.Literal("none"),
    Type.Literal("auto"),
    Type.Literal("required"),
    Type.Object({ type: Type.Literal("function"), function: Type.Object({ name: Type.String() }) }),
  ],
  { description: "'none', 'auto', 'required' or {type: 'function', function: {name}}" },
);

const ResponseFormat = Type.Union(
  [
    Type.Object({ type: Type.Literal("text") }),
    Type.Object({ type: Type.Literal("json_object"), schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
    Type.Object({
      type: Type.Literal("json_schema"),
      json_schema: Type.Object({
        name: Type.Optional(Type.String()),
        description: Type.Optional(Type.String()),
        schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        strict: Nullable(Type.Boolean(), "a boolean"),
      }),
    }),
  ],
  { description: "{type: 'text' | 'json_object' | 'json_schema'}" },
);

const Stop = Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 16 })], {
  description: "a string or an array of at most 16 strings",
});

const ReasoningEffort = Type.Union(
  ["none", "minimal", "low", "medium", "high", "xhigh", "max"].map((v) => Type.Literal(v)),
  { description: "one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'" },
);

/** Sampling and stopping fields shared by chat and text completions. */
const samplingFields = {
  /** May be left out when exactly one model is served, as llama-server and vLLM allow. */
  model: Type.Optional(Type.String({ description: "a model id from /v1/models" })),
  max_tokens: Nullable(Type.Integer({ minimum: 1 }), "an integer >= 1"),
  temperature: Nullable(Type.Number({ minimum: 0, maximum: 2 }), "a number between 0 and 2"),
  top_p: Nullable(Type.Number({ minimum: 0, maximum: 1 }), "a number between 0 and 1"),
  top_k: Nullable(Type.Integer({ minimum: -1 }), "an integer >= -1 (0 or -1 disables it)"),
  min_p: Nullable(Type.Number({ minimum: 0, maximum: 1 }), "a number between 0 and 1"),
  seed: Nullable(Type.Integer(), "an integer"),
  stop: Nullable(Stop, "a string or an array of at most 16 strings"),
  presence_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), "a number between -2 and 2"),
  frequency_penalty: Nullable(Type.Number({ minimum: -2, maximum: 2 }), "a number between -2 and 2"),
  repeat_penalty: Nullable(Type.Number({ minimum: 0 }), "a number >= 0"),
  n: Nullable(Type.Integer({ minimum: 1, maximum: 8 }), "an integer between 1 and 8"),
  stream: Nullable(Type.Boolean(), "a boolean"),
  stream_options: Nullable(
    Type.Object({ include_usage: Nullable(Type.Boolean(), "a boolean") }),
    "an object {include_usage: boolean}",
  ),
  user: Nullable(Type.String(), "a string"),
  /** llama-server's per-request LoRA adapters: each by index or name, with a scale. */
  lora: Nullable(
    Type.Array(
      Type.Object({
        id: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })])),
        name: Type.Optional(Type.String({ minLength: 1 })),
        scale: Type.Optional(Type.Number()),
      }),
      { maxItems: 16 },
    ),
    "an array of at most 16 {id: adapter index or name, scale?: number}",
  ),
};

export const ChatCompletionRequest = Type.Object(
  {
    ...samplingFields,
    messages: Type.Array(ChatMessage, { minItems: 1, description: "a non-empty array of messages" }),
    max_completion_tokens: Nullable(Type.Integer({ minimum: 1 }), "an integer >= 1"),
    tools: Nullable(Type.Array(FunctionTool), "an array of function tools"),
    tool_choice: Nullable(ToolChoice, "'none', 'auto', 'required' or {type: 'function', function: {name}}"),
    parallel_tool_calls: Nullable(Type.Boolean(), "a boolean"),
    response_format: Nullable(ResponseFormat, "{type: 'text' | 'json_object' | 'json_schema'}"),
    enable_thinking: Nullable(Type.Boolean(), "a boolean"),
    chat_template_kwargs: Nullable(Type.Record(Type.String(), Type.Unknown()), "an object"),
    reasoning_effort: Nullable(ReasoningEffort, "one of 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'"),
    reasoning: Nullable(Type.Object({ effort: Type.Optional(ReasoningEffort) }), "an object {effort}"),
    return_reasoning: Nullable(Type.Boolean(), "a boolean"),
    include_reasoning: Nullable(Type.Boolean(), "a boolean"),
    reasoning_format: Nullable(
      Type.Union([Type.Literal("separate"), Type.Literal("inline")]),
      "'separate' or 'inline'",
    ),
    thinking_budget: Nullable(Type.Integer({ minimum: 0 }), "an integer >= 0"),
    thinking_budget_tokens: Nullable(Type.Integer({ minimum: 0 }), "an integer >= 0"),
    thinking_token_budget: Nullable(Type.Integer({ minimum: 0 }), "an integer >= 0"),
    logprobs: Nullable(Type.Boolean(), "a boolean"),
    top_logprobs: Nullable(Type.Integer({ minimum: 0, maximum: 20 }), "an integer between 0 and 20"),
  },
  { additionalProperties: true },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

const TokenIds = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1, description: "a non-empty array of token ids" });

const Prompt = Type.Union(
  [
    Type.String(),
    Type.Array(Type.String(), { minItems: 1 }),
    TokenIds,
    Type.Array(TokenIds, { minItems: 1 }),
  ],
  { description: "a string, an array of strings, an array of token ids, or an array of token-id arrays" },
);

/** POST /v1/completions: a raw prompt, no chat template. */
export const CompletionRequest = Type.Object(
  {
    ...samplingFields,
    prompt: Prompt,
    echo: Nullable(Type.Boolean(), "a boolean"),
    logprobs: Nullable(Type.Integer({ minimum: 0, maximum: 5 }), "an integer between 0 and 5"),
    suffix: Nullable(Type.String(), "a string"),
    best_of: Nullable(Type.Integer({ minimum: 1 }), "an integer >= 1"),
  },
  { additionalProperties: true },
);
export type CompletionRequest = Static<typeof CompletionRequest>;
