/**
 * The server's one embedded store: a SQLite file (better-sqlite3, WAL) shared by the playground's
 * conversations and the stored /v1/responses. It is opened on first use, so a server nobody
 * stores anything on never writes to disk, and closed when the server stops.
 */
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/schema.js";
import { dataDir } from "../config/data-dir.js";

/**
 * `server.dataDir`, or `data/` beside `model.dir`. The file keeps the name it had when it held only
 * conversations, so existing data stays where it is.
 */
export function storeFile(config: Config): string {
  return join(dataDir(config), "conversations.sqlite");
}

export class StoreDb {
  #db: Database.Database | null = null;
  /** Schemas already applied on the open connection. */
  readonly #applied = new Set<string>();

  constructor(readonly file: string) {}

  /** The connection, opened if need be, with `schema` (idempotent DDL of the caller's tables) applied. */
  open(schema: string): Database.Database {
    if (!this.#db) {
      mkdirSync(dirname(this.file), { recursive: true });
      const db = new Database(this.file);
      db.pragma("journal_mode = WAL");
      db.pragma("foreign_keys = ON");
      this.#db = db;
    }
    if (!this.#applied.has(schema)) {
      this.#db.exec(schema);
      this.#applied.add(schema);
    }
    return this.#db;
  }

  close(): void {
    this.#db?.close();
    this.#db = null;
    this.#applied.clear();
  }
}
