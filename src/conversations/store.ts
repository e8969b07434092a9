/** The playground's conversations, in the server's embedded store (src/store/db.ts). */
import type Database from "better-sqlite3";
import { randomBytes } from "node:crypto";
import type { StoreDb } from "../store/db.js";
import type { Conversation, ConversationItem, ItemInput, Page } from "../openai/conversation-schema.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversations (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- Rises on every change: orders the list exactly, where updated_at (seconds) would tie.
  touched INTEGER NOT NULL,
  metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_recent ON conversations (touched);
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_conversation ON items (conversation_id, seq);
`;

export interface ListOptions {
  limit: number;
  order: "asc" | "desc";
  /** Id of the last entry of the previous page. */
  after?: string;
}

interface ConversationRow {
  id: string;
  created_at: number;
  updated_at: number;
  touched: number;
  metadata: string;
}

const NEXT_TOUCH = "(SELECT COALESCE(MAX(touched), 0) + 1 FROM conversations)";

const newId = (prefix: string) => `${prefix}_${randomBytes(24).toString("hex")}`;
const now = () => Math.floor(Date.now() / 1000);

function toConversation(row: ConversationRow): Conversation {
  return { id: row.id, object: "conversation", created_at: row.created_at, updated_at: row.updated_at, metadata: JSON.parse(row.metadata) };
}

function toItem(id: string, input: ItemInput, createdAt: number): ConversationItem {
  const partType = input.role === "assistant" ? "output_text" : "input_text";
  const parts = typeof input.content === "string" ? [{ text: input.content }] : input.content;
  return {
    id,
    type: "message",
    status: input.status ?? "completed",
    role: input.role,
    content: parts.map(({ text }) => ({ type: partType, text })),
    created_at: createdAt,
    ...(input.reasoning_content !== undefined && { reasoning_content: input.reasoning_content }),
    ...(input.model !== undefined && { model: input.model }),
    ...(input.usage && { usage: input.usage }),
    ...(input.metrics && { metrics: input.metrics }),
  };
}

export function page<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const data = rows.slice(0, limit);
  return { object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: rows.length > limit };
}

export class ConversationStore {
  constructor(private readonly db: StoreDb) {}

  get #open(): Database.Database {
    return this.db.open(SCHEMA);
  }

  create(metadata: Record<string, string>, items: ItemInput[]): Conversation {
    const db = this.#open;
    const id = newId("conv");
    const t = now();
    db.transaction(() => {
      db.prepare(`INSERT INTO conversations (id, created_at, updated_at, touched, metadata) VALUES (?, ?, ?, ${NEXT_TOUCH}, ?)`).run(id, t, t, JSON.stringify(metadata));
      this.#insertItems(id, items, t);
    })();
    return this.get(id)!;
  }

  get(id: string): Conversation | undefined {
    const row = this.#open.prepare("SELECT * FROM conversations WHERE id = ?").get(id) as ConversationRow | undefined;
    return row && toConversation(row);
  }

  /** Most recently updated first (or last, with order "asc"). */
  list({ limit, order, after }: ListOptions): Page<Conversation> {
    const db = this.#open;
    const cursor = after === undefined ? undefined : (db.prepare("SELECT * FROM conversations WHERE id = ?").get(after) as ConversationRow | undefined);
    if (after !== undefined && !cursor) return page([], limit);
    const [cmp, dir] = order === "desc" ? ["<", "DESC"] : [">", "ASC"];
    const where = cursor ? `WHERE touched ${cmp} ?` : "";
    const rows = db
      .prepare(`SELECT * FROM conversations ${where} ORDER BY touched ${dir} LIMIT ?`)
      .all(...(cursor ? [cursor.touched] : []), limit + 1) as ConversationRow[];
    return page(rows.map(toConversation), limit);
  }

  /** Replaces the metadata, as OpenAI's update does; undefined when there is no such conversation. */
  update(id: string, metadata: Record<string, string>): Conversation | undefined {
    const changed = this.#open.prepare(`UPDATE conversations SET metadata = ?, updated_at = ?, touched = ${NEXT_TOUCH} WHERE id = ?`).run(JSON.stringify(metadata), now(), id);
    return changed.changes ? this.get(id) : undefined;
  }

  delete(id: string): boolean {
    return this.#open.prepare("DELETE FROM conversations WHERE id = ?").run(id).changes > 0;
  }

  /** Appends items in order; undefined when there is no such conversation. */
  addItems(conversationId: string, items: ItemInput[]): ConversationItem[] | undefined {
    const db = this.#open;
    const t = now();
    return db.transaction(() => {
      if (db.prepare(`UPDATE conversations SET updated_at = ?, touched = ${NEXT_TOUCH} WHERE id = ?`).run(t, conversationId).changes === 0) return undefined;
      return this.#insertItems(conversationId, items, t);
    })();
  }

  /** Undefined when there is no such conversation. */
  listItems(conversationId: string, { limit, order, after }: ListOptions): Page<ConversationItem> | undefined {
    if (!this.get(conversationId)) return undefined;
    const db = this.#open;
    const cursor =
      after === undefined
        ? undefined
        : (db.prepare("SELECT seq FROM items WHERE id = ? AND conversation_id = ?").get(after, conversationId) as { seq: number } | undefined);
    if (after !== undefined && !cursor) return page([], limit);
    const [cmp, dir] = order === "desc" ? ["<", "DESC"] : [">", "ASC"];
    const rows = db
      .prepare(`SELECT body FROM items WHERE conversation_id = ? ${cursor ? `AND seq ${cmp} ?` : ""} ORDER BY seq ${dir} LIMIT ?`)
      .all(conversationId, ...(cursor ? [cursor.seq] : []), limit + 1) as Array<{ body: string }>;
    return page(rows.map((r) => JSON.parse(r.body) as ConversationItem), limit);
  }

  /** Every item, oldest first; undefined when there is no such conversation. */
  allItems(conversationId: string): ConversationItem[] | undefined {
    if (!this.get(conversationId)) return undefined;
    const rows = this.#open.prepare("SELECT body FROM items WHERE conversation_id = ? ORDER BY seq").all(conversationId) as Array<{ body: string }>;
    return rows.map((r) => JSON.parse(r.body) as ConversationItem);
  }

  getItem(conversationId: string, itemId: string): ConversationItem | undefined {
    const row = this.#open.prepare("SELECT body FROM items WHERE conversation_id = ? AND id = ?").get(conversationId, itemId) as { body: string } | undefined;
    return row && (JSON.parse(row.body) as ConversationItem);
  }

  deleteItem(conversationId: string, itemId: string): boolean {
    return this.#open.prepare("DELETE FROM items WHERE conversation_id = ? AND id = ?").run(conversationId, itemId).changes > 0;
  }

  #insertItems(conversationId: string, items: ItemInput[], createdAt: number): ConversationItem[] {
    const insert = this.#open.prepare("INSERT INTO items (id, conversation_id, body) VALUES (?, ?, ?)");
    return items.map((input) => {
      const item = toItem(newId("msg"), input, createdAt);
      insert.run(item.id, conversationId, JSON.stringify(item));
      return item;
    });
  }
}
