/**
 * Wire schema of POST /v1/responses (OpenAI Responses API). Items and tools are checked loosely
 * here and field by field in responses-input.ts, which names the offending item in its errors
 * (a union schema would only say that no branch matched). Unknown fields are allowed, as in chat.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { ChatCompletionRequest } from "./schema.js";

const Nullable = <T extends TSchema>(t: T, description: string) =>
  Type.Optional(Type.Union([t, Type.Null()], { description }));

const ContentPart = Type.Object(
  { type: Type.String(), text: Type.Optional(Type.String()) },
  { additionalProperties: true, description: "a content part {type, text}" },
);
export type ResponsesContentPart = Static<typeof ContentPart>;

const Content = Type.Union([Type.String(), Type.Array(ContentPart)], { description: "a string or an array of content parts" });

export const InputItem = Type.Object(
  {
    type: Type.Optional(Type.String({ description: "an item type" })),
    role: Type.Optional(
      Type.Union([Type.Literal("user"), Type.Literal("system"), Type.Literal("developer"), Type.Literal("assistant")], {
        description: "one of 'user', 'system', 'developer', 'assistant'",
      }),
    ),
    content: Type.Optional(Content),
    call_id: Type.Optional(Type.String({ description: "a string" })),
    name: Type.Optional(Type.String({ description: "a string" })),
    arguments: Type.Optional(Type.String({ description: "a JSON object encoded as a string" })),
    output: Type.Optional(Content),
    summary: Type.Optional(Type.Array(ContentPart, { description: "an array of summary parts" })),
  },
  { additionalProperties: true, description: "an input item" },
);
export type InputItem = Static<typeof InputItem>;

const Tool = Type.Object(
  {
    type: Type.String({ description: "a tool type" }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9_.:-]+$", description: "a function name of at most 64 letters, digits, '_', '.', ':' or '-'" })),
    description: Nullable(Type.String(), "a string"),
    parameters: Nullable(Type.Record(Type.String(), Type.Unknown()), "a JSON schema object"),
    strict: Nullable(Type.Boolean(), "a boolean"),
  },
  { additionalProperties: true, description: "a tool {type: 'function', name, parameters}" },
);

const ToolChoice = Type.Union(
  [
    Type.Literal("none"),
    Type.Literal("auto"),
    Type.Literal("required"),
    Type.Object({ type: Type.String(), name: Type.Optional(Type.String()) }, { additionalProperties: true }),
  ],
  { description: "'none', 'auto', 'required' or {type: 'function', name}" },
);
export type ResponsesToolChoice = Static<typeof ToolChoice>;

const TextFormat = Type.Object(
  {
    type: Type.Union([Type.Literal("text"), Type.Literal("json_object"), Type.Literal("json_schema")], {
      description: "one of 'text', 'json_object', 'json_schema'",
    }),
    name: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    strict: Nullable(Type.Boolean(), "a boolean"),
  },
  { additionalProperties: true, description: "{type: 'text' | 'json_object' | 'json_schema'}" },
);
export type ResponsesTextFormat = Static<typeof TextFormat>;

/**
 * Chat fields that mean the same here: OpenAI's shared ones and the engine extensions chat accepts
 * (sampling, stop, thinking switches). They are validated by chat's schemas and passed on as they are.
 */
export const SHARED_CHAT_FIELDS = [
  "model", "temperature", "top_p", "parallel_tool_calls", "reasoning", "stream", "user",
  "top_k", "min_p", "seed", "stop", "presence_penalty", "frequency_penalty", "repeat_penalty",
  "enable_thinking", "chat_template_kwargs", "thinking_budget", "thinking_budget_tokens", "thinking_token_budget",
  "lora",
] as const;

export const ResponsesRequest = Type.Object(
  {
    ...Type.Pick(ChatCompletionRequest, SHARED_CHAT_FIELDS).properties,
    input: Type.Union([Type.String(), Type.Array(InputItem, { minItems: 1 })], { description: "a string or a non-empty array of input items" }),
    instructions: Nullable(Type.String(), "a string"),
    tools: Nullable(Type.Array(Tool), "an array of tools"),
    tool_choice: Nullable(ToolChoice, "'none', 'auto', 'required' or {type: 'function', name}"),
    max_output_tokens: Nullable(Type.Integer({ minimum: 1 }), "an integer >= 1"),
    text: Nullable(Type.Object({ format: Type.Optional(TextFormat) }, { additionalProperties: true }), "an object {format}"),
    store: Nullable(Type.Boolean(), "a boolean"),
    previous_response_id: Nullable(Type.String(), "a response id"),
    metadata: Nullable(
      Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16 }),
      "an object of at most 16 string values",
    ),
  },
  { additionalProperties: true },
);
export type ResponsesRequest = Static<typeof ResponsesRequest>;
