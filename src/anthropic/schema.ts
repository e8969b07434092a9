/**
 * Wire schemas for Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens), as
 * the `@anthropic-ai/sdk` sends them. Unknown fields are accepted, as on the OpenAI routes.
 */
import { Type, type Static } from "@sinclair/typebox";

const TextBlock = Type.Object({ type: Type.Literal("text"), text: Type.String() }, { additionalProperties: true });

/** Blocks a text-only model cannot read; the translation answers them with a clear 400. */
const UNSUPPORTED_BLOCKS = ["image", "document", "search_result", "container_upload", "server_tool_use", "web_search_tool_result"] as const;

const UnsupportedBlock = Type.Object(
  { type: Type.Union(UNSUPPORTED_BLOCKS.map((t) => Type.Literal(t))) },
  { additionalProperties: true },
);

const ToolResultBlock = Type.Object(
  {
    type: Type.Literal("tool_result"),
    tool_use_id: Type.String({ minLength: 1 }),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(Type.Union([TextBlock, UnsupportedBlock]))])),
    is_error: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

const ToolUseBlock = Type.Object(
  { type: Type.Literal("tool_use"), id: Type.String({ minLength: 1 }), name: Type.String({ minLength: 1 }), input: Type.Record(Type.String(), Type.Unknown()) },
  { additionalProperties: true },
);

const ThinkingBlock = Type.Object({ type: Type.Literal("thinking"), thinking: Type.String() }, { additionalProperties: true });
const RedactedThinkingBlock = Type.Object({ type: Type.Literal("redacted_thinking"), data: Type.String() }, { additionalProperties: true });

const BLOCK_KINDS = "text, tool_use, tool_result, thinking or redacted_thinking";

const ContentBlock = Type.Union([TextBlock, ToolUseBlock, ToolResultBlock, ThinkingBlock, RedactedThinkingBlock, UnsupportedBlock], {
  description: `a content block (${BLOCK_KINDS})`,
});
export type ContentBlock = Static<typeof ContentBlock>;

export const Message = Type.Object(
  {
    role: Type.Union([Type.Literal("user"), Type.Literal("assistant")], { description: "'user' or 'assistant'" }),
    content: Type.Union([Type.String(), Type.Array(ContentBlock, { minItems: 1 })], { description: `a string or a non-empty array of content blocks (${BLOCK_KINDS})` }),
  },
  { description: "a message object {role, content}" },
);
export type Message = Static<typeof Message>;

const Tool = Type.Object(
  {
    type: Type.Optional(Type.Literal("custom")),
    name: Type.String({ minLength: 1, maxLength: 128, pattern: "^[a-zA-Z0-9_-]+$" }),
    description: Type.Optional(Type.String()),
    input_schema: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true, description: "a client tool {name, description, input_schema}; server tools are not supported" },
);

const parallel = { disable_parallel_tool_use: Type.Optional(Type.Boolean()) };
const ToolChoice = Type.Union(
  [
    Type.Object({ type: Type.Literal("auto"), ...parallel }),
    Type.Object({ type: Type.Literal("any"), ...parallel }),
    Type.Object({ type: Type.Literal("tool"), name: Type.String(), ...parallel }),
    Type.Object({ type: Type.Literal("none") }),
  ],
  { description: "{type: 'auto' | 'any' | 'none'} or {type: 'tool', name}" },
);

const Thinking = Type.Union(
  [
    Type.Object({ type: Type.Literal("enabled"), budget_tokens: Type.Integer({ minimum: 1 }) }, { additionalProperties: true }),
    Type.Object({ type: Type.Literal("adaptive") }, { additionalProperties: true }),
    Type.Object({ type: Type.Literal("disabled") }),
  ],
  { description: "{type: 'enabled', budget_tokens}, {type: 'adaptive'} or {type: 'disabled'}" },
);

/** The conversation and its tools: what both routes render into a prompt. */
const promptFields = {
  /** May be left out when exactly one model is served, as on the OpenAI routes. */
  model: Type.Optional(Type.String({ description: "a model id from /v1/models" })),
  messages: Type.Array(Message, { minItems: 1, description: "a non-empty array of messages" }),
  system: Type.Optional(Type.Union([Type.String(), Type.Array(TextBlock)], { description: "a string or an array of text blocks" })),
  tools: Type.Optional(Type.Array(Tool, { description: "an array of tools" })),
  tool_choice: Type.Optional(ToolChoice),
  thinking: Type.Optional(Thinking),
};

export const CountTokensRequest = Type.Object(promptFields, { additionalProperties: true });
export type CountTokensRequest = Static<typeof CountTokensRequest>;

export const MessagesRequest = Type.Object(
  {
    ...promptFields,
    max_tokens: Type.Integer({ minimum: 1, description: "an integer >= 1" }),
    stop_sequences: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 16, description: "an array of at most 16 non-empty strings" })),
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "a number between 0 and 1" })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "a number between 0 and 1" })),
    top_k: Type.Optional(Type.Integer({ minimum: 0, description: "an integer >= 0" })),
    metadata: Type.Optional(Type.Object({ user_id: Type.Optional(Type.Union([Type.String(), Type.Null()])) }, { additionalProperties: true })),
    stream: Type.Optional(Type.Boolean({ description: "a boolean" })),
  },
  { additionalProperties: true },
);
export type MessagesRequest = Static<typeof MessagesRequest>;

/** Request fields this server reads; anything else is accepted and logged at debug. */
export const KNOWN_MESSAGES_FIELDS = new Set(Object.keys(MessagesRequest.properties));
