/**
 * Wire schemas of /v1/conversations, shaped after OpenAI's Conversations API: a conversation is
 * `{id: "conv_…", object: "conversation", created_at, metadata}`, its items are `message` items
 * with content parts. edgellm adds what the playground shows under a reply: the reasoning, the
 * token counts and the speed (TTFT, tokens per second).
 */
import { Type, type Static } from "@sinclair/typebox";

/** OpenAI's bounds: up to 16 pairs, keys up to 64 characters, values up to 512. */
export const Metadata = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), {
  maxProperties: 16,
  description: "an object of up to 16 string values (keys up to 64 characters, values up to 512)",
});

const ContentPart = Type.Object(
  {
    type: Type.Union([Type.Literal("input_text"), Type.Literal("output_text"), Type.Literal("text")], {
      description: "one of 'input_text', 'output_text', 'text'",
    }),
    text: Type.String(),
  },
  { additionalProperties: false },
);

const Count = Type.Integer({ minimum: 0 });
const Rate = Type.Number({ minimum: 0 });

export const ItemInput = Type.Object(
  {
    type: Type.Optional(Type.Literal("message")),
    role: Type.Union([Type.Literal("user"), Type.Literal("assistant"), Type.Literal("system"), Type.Literal("developer")], {
      description: "one of 'user', 'assistant', 'system', 'developer'",
    }),
    content: Type.Union([Type.String(), Type.Array(ContentPart, { maxItems: 64 })], { description: "a string or an array of text parts" }),
    /** "incomplete": the reply was stopped or cut off. */
    status: Type.Optional(
      Type.Union([Type.Literal("completed"), Type.Literal("incomplete")], { description: "one of 'completed', 'incomplete'" }),
    ),
    reasoning_content: Type.Optional(Type.String()),
    model: Type.Optional(Type.String({ maxLength: 256 })),
    usage: Type.Optional(
      Type.Object(
        { prompt_tokens: Count, completion_tokens: Count, reasoning_tokens: Type.Optional(Count) },
        { additionalProperties: false },
      ),
    ),
    metrics: Type.Optional(
      Type.Object(
        { ttft_ms: Type.Optional(Rate), tokens_per_second: Type.Optional(Rate), duration_ms: Type.Optional(Rate), thinking_ms: Type.Optional(Rate) },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ItemInput = Static<typeof ItemInput>;

const Items = Type.Array(ItemInput, { maxItems: 20, description: "an array of up to 20 items" });

export const CreateConversation = Type.Object(
  { metadata: Type.Optional(Metadata), items: Type.Optional(Items) },
  { additionalProperties: false },
);
export type CreateConversation = Static<typeof CreateConversation>;

export const UpdateConversation = Type.Object({ metadata: Metadata }, { additionalProperties: false });
export type UpdateConversation = Static<typeof UpdateConversation>;

export const AddItems = Type.Object({ items: Items }, { additionalProperties: false });
export type AddItems = Static<typeof AddItems>;

export const ListQuery = Type.Object({
  // Query strings stay strings (the validator does not coerce): 1 to 100.
  limit: Type.Optional(Type.String({ pattern: "^(100|[1-9][0-9]?)$", description: "an integer from 1 to 100" })),
  order: Type.Optional(Type.Union([Type.Literal("asc"), Type.Literal("desc")], { description: "'asc' or 'desc'" })),
  after: Type.Optional(Type.String({ maxLength: 128 })),
});
export type ListQuery = Static<typeof ListQuery>;

export interface Conversation {
  id: string;
  object: "conversation";
  created_at: number;
  /** When an item was last added or the metadata changed; the list is ordered by it. */
  updated_at: number;
  metadata: Record<string, string>;
}

export interface ConversationItem {
  id: string;
  type: "message";
  status: "completed" | "incomplete";
  role: ItemInput["role"];
  content: Array<{ type: "input_text" | "output_text"; text: string }>;
  created_at: number;
  reasoning_content?: string;
  model?: string;
  usage?: NonNullable<ItemInput["usage"]>;
  metrics?: NonNullable<ItemInput["metrics"]>;
}

export interface Page<T extends { id: string }> {
  object: "list";
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}
