/** ResponseStore in SQLite: least recently used first out, past the count or the size bound; kept across a reopen. */
import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResponseStore, type StoredResponse } from "../../src/server/response-store.js";
import { StoreDb } from "../../src/store/db.js";

/** An entry whose JSON is about `size` bytes. */
const entry = (id: string, size = 100): StoredResponse => ({
  response: { id } as StoredResponse["response"],
  conversation: [{ role: "user", content: "x".repeat(size) }],
});
const bytes = (e: StoredResponse) => Buffer.byteLength(JSON.stringify(e));

describe("ResponseStore", () => {
  let dir: string;
  let db: StoreDb;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "edgellm-responses-"));
    db = new StoreDb(join(dir, "store.sqlite"));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("drops the least recently used past maxEntries; get counts as a use", () => {
    const store = new ResponseStore(db, 2, 1e9);
    store.put(entry("a"));
    store.put(entry("b"));
    store.get("a");
    store.put(entry("c"));
    expect([store.get("a"), store.get("b"), store.get("c")].map((e) => e?.response.id)).toEqual(["a", undefined, "c"]);
  });

  it("drops the least recently used past maxBytes and keeps none larger than the budget", () => {
    const size = bytes(entry("a"));
    const store = new ResponseStore(db, 100, 2 * size);
    store.put(entry("a"));
    store.put(entry("b"));
    store.put(entry("c"));
    expect(store.get("a")).toBeUndefined();
    expect(store.get("b")?.response.id).toBe("b");
    store.put(entry("huge", 3 * size));
    expect(store.get("huge")).toBeUndefined();
    expect(store.get("c")?.response.id).toBe("c");
  });

  it("replacing or deleting an entry gives its bytes back", () => {
    const size = bytes(entry("a"));
    const store = new ResponseStore(db, 100, 2 * size);
    store.put(entry("a"));
    store.put(entry("a"));
    store.put(entry("b"));
    expect(store.get("a")?.response.id).toBe("a");
    expect(store.delete("a")).toBe(true);
    expect(store.delete("a")).toBe(false);
    store.put(entry("c"));
    expect(store.get("b")?.response.id).toBe("b");
    expect(store.get("c")?.response.id).toBe("c");
  });

  it("keeps nothing with maxEntries 0", () => {
    const store = new ResponseStore(db, 0, 1e9);
    store.put(entry("a"));
    expect(store.get("a")).toBeUndefined();
  });

  it("keeps entries and their use order across a reopen of the file", () => {
    new ResponseStore(db, 2, 1e9).put(entry("a"));
    new ResponseStore(db, 2, 1e9).put(entry("b"));
    db.close();
    db = new StoreDb(db.file);
    const store = new ResponseStore(db, 2, 1e9);
    expect(store.get("a")).toEqual(entry("a"));
    store.put(entry("c"));
    expect([store.get("a"), store.get("b"), store.get("c")].map((e) => e?.response.id)).toEqual(["a", undefined, "c"]);
  });

  it("applies smaller bounds to what an earlier run left, on first use", () => {
    const before = new ResponseStore(db, 3, 1e9);
    for (const id of ["a", "b", "c"]) before.put(entry(id));
    before.get("a");
    const after = new ResponseStore(db, 2, 1e9);
    expect([after.get("b"), after.get("c"), after.get("a")].map((e) => e?.response.id)).toEqual([undefined, "c", "a"]);
  });
});
