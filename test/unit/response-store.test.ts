/** ResponseStore: least recently used first out, past the count or the size bound. */
import { describe, it, expect } from "vitest";
import { ResponseStore, type StoredResponse } from "../../src/server/response-store.js";

/** An entry whose JSON is about `size` bytes. */
const entry = (id: string, size = 100): StoredResponse => ({
  response: { id } as StoredResponse["response"],
  conversation: [{ role: "user", content: "x".repeat(size) }],
});
const bytes = (e: StoredResponse) => Buffer.byteLength(JSON.stringify(e));

describe("ResponseStore", () => {
  it("drops the least recently used past maxEntries; get counts as a use", () => {
    const store = new ResponseStore(2, 1e9);
    store.put(entry("a"));
    store.put(entry("b"));
    store.get("a");
    store.put(entry("c"));
    expect([store.get("a"), store.get("b"), store.get("c")].map((e) => e?.response.id)).toEqual(["a", undefined, "c"]);
  });

  it("drops the least recently used past maxBytes and keeps none larger than the budget", () => {
    const size = bytes(entry("a"));
    const store = new ResponseStore(100, 2 * size);
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
    const store = new ResponseStore(100, 2 * size);
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
    const store = new ResponseStore(0, 1e9);
    store.put(entry("a"));
    expect(store.get("a")).toBeUndefined();
  });
});
