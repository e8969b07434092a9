/**
 * Stored /v1/responses (store: true), in the server's embedded store (src/store/db.ts), so they
 * outlive a restart. Bounded by count (`responses.maxStored`) and by size (`responses.maxStoredMB`):
 * the least recently used response is dropped first, so the file cannot grow without limit. Each
 * entry keeps the conversation that led to the response, so previous_response_id can continue it
 * without the client resending it.
 */
import type Database from "better-sqlite3";
import type { InputItem } from "../openai/responses-schema.js";
import type { ResponseObject } from "../openai/responses.js";
import type { StoreDb } from "../store/db.js";

export interface StoredResponse {
  response: ResponseObject;
  /** The input items of this response and of every response before it (instructions excluded). */
  conversation: InputItem[];
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS responses (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  -- Rises on every put and get: the lowest is the least recently used.
  used INTEGER NOT NULL,
  body TEXT NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_by_use ON responses (used);
`;

const NEXT_USE = "(SELECT COALESCE(MAX(used), 0) + 1 FROM responses)";

/**
 * Counted from the most recently used down, the first row past either bound and every older one:
 * the same rows as dropping the least recently used until both bounds hold.
 */
const EVICT = `
DELETE FROM responses WHERE id IN (
  SELECT id FROM (
    SELECT id, ROW_NUMBER() OVER newest AS n, SUM(bytes) OVER newest AS total
    FROM responses WINDOW newest AS (ORDER BY used DESC)
  ) WHERE n > ? OR total > ?
)`;

export class ResponseStore {
  #trimmed = false;

  constructor(
    private readonly db: StoreDb,
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** The first use also applies the bounds to what an earlier run, maybe with larger ones, left. */
  get #open(): Database.Database {
    const db = this.db.open(SCHEMA);
    if (!this.#trimmed) db.prepare(EVICT).run(this.maxEntries, this.maxBytes);
    this.#trimmed = true;
    return db;
  }

  get(id: string): StoredResponse | undefined {
    const row = this.#open.prepare(`UPDATE responses SET used = ${NEXT_USE} WHERE id = ? RETURNING body`).get(id) as { body: string } | undefined;
    return row && (JSON.parse(row.body) as StoredResponse);
  }

  /**
   * Keeps `entry`, dropping the least recently used ones past either bound. Its size counts every
   * item of its conversation, also those earlier entries share, so the real total stays below the
   * bound; an entry larger than the whole budget is not kept.
   */
  put(entry: StoredResponse): void {
    const body = JSON.stringify(entry);
    const bytes = Buffer.byteLength(body);
    if (this.maxEntries === 0 || bytes > this.maxBytes) return;
    const db = this.#open;
    db.transaction(() => {
      db.prepare("DELETE FROM responses WHERE id = ?").run(entry.response.id);
      db.prepare(`INSERT INTO responses (id, used, body, bytes) VALUES (?, ${NEXT_USE}, ?, ?)`).run(entry.response.id, body, bytes);
      db.prepare(EVICT).run(this.maxEntries, this.maxBytes);
    })();
  }

  delete(id: string): boolean {
    return this.#open.prepare("DELETE FROM responses WHERE id = ?").run(id).changes > 0;
  }
}
