import { describe, it, expect } from "vitest";
import { KvPagePool, pageHash } from "../../src/engine/kv/page-pool.js";

const seq = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe("KvPagePool", () => {
  it("counts partial pages whole and grows the last private page in place", () => {
    const pool = new KvPagePool(4, 10, true);
    pool.commit(0, seq(0, 5));
    expect(pool.usedPages()).toBe(2);
    expect(pool.pagesToGrow(0, 3)).toBe(0);
    expect(pool.pagesToGrow(0, 4)).toBe(1);
    pool.commit(0, seq(5, 3));
    expect(pool.usedPages()).toBe(2);
    expect(pool.tokensOf(0)).toBe(8);
    pool.commit(0, [8]);
    expect(pool.usedPages()).toBe(3);
  });

  it("content-addresses full pages with a hash chain: the same page after a different prefix does not match", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(pool.lookup([1, 2, 3, 4, 5, 6, 7, 8, 0, 0])).toEqual({ tokens: 8, holders: [0] });
    expect(pool.lookup([1, 2, 3, 4, 5, 6, 7, 0])).toEqual({ tokens: 4, holders: [0] });
    expect(pool.lookup([9, 9, 9, 9, 5, 6, 7, 8])).toEqual({ tokens: 0, holders: [] });
    // The partial third page is not in the index.
    expect(pool.lookup([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).tokens).toBe(8);
    expect(pageHash(pageHash("", [1, 2, 3, 4]), [5, 6, 7, 8])).not.toBe(pageHash("", [5, 6, 7, 8]));
  });

  it("unified: an adopted prefix shares pages, freed only when the last holder drops them", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 10));
    expect(pool.usedPages()).toBe(3);
    pool.adopt(1, 0, 8);
    pool.commit(1, [77, 78]);
    // Two shared pages, slot 0's partial page, slot 1's partial page.
    expect(pool.usedPages()).toBe(4);
    expect(pool.stats().sharedPages).toBe(2);
    expect(pool.lookup(seq(0, 12)).holders).toEqual([0, 1]);
    pool.truncate(0, 0);
    expect(pool.usedPages()).toBe(3);
    expect(pool.lookup(seq(0, 12))).toEqual({ tokens: 8, holders: [1] });
    pool.truncate(1, 0);
    expect(pool.usedPages()).toBe(0);
    expect(pool.lookup(seq(0, 12)).tokens).toBe(0);
  });

  it("per-sequence: an adopted prefix is a copy that costs its own pages", () => {
    const pool = new KvPagePool(4, 100, false);
    pool.commit(0, seq(0, 8));
    pool.adopt(1, 0, 8);
    expect(pool.usedPages()).toBe(4);
    expect(pool.stats().sharedPages).toBe(0);
    pool.truncate(0, 0);
    expect(pool.lookup(seq(0, 9))).toEqual({ tokens: 8, holders: [1] });
  });

  it("a sequence that cuts into a shared page stops sharing it and is counted on its own", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 8));
    pool.adopt(1, 0, 8);
    expect(pool.usedPages()).toBe(2);
    pool.truncate(1, 6);
    pool.commit(1, [50]);
    // Over-counts (llama.cpp still shares the first two cells of page 2): never under-counts.
    expect(pool.usedPages()).toBe(3);
    expect(pool.lookup(seq(0, 9))).toEqual({ tokens: 8, holders: [0] });
  });

  it("a diverging token replaces the page and every page after it", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 12));
    pool.truncate(0, 5);
    pool.commit(0, [99, 6, 7, 8, 9, 10, 11]);
    expect(pool.usedPages()).toBe(3);
    expect(pool.lookup(seq(0, 12)).tokens).toBe(4);
    expect(pool.lookup([0, 1, 2, 3, 4, 99, 6, 7, 8, 9, 10, 11, 0]).tokens).toBe(12);
  });

  it("evicts idle tail pages least recently used first, and only what is needed", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 8));
    pool.commit(1, seq(100, 8));
    pool.touch(0); // slot 0 used again: its pages are the most recent
    const cuts = pool.evict(1, [0, 1]);
    expect([...cuts]).toEqual([[1, 4]]);
    expect(pool.usedPages()).toBe(3);
    expect(pool.tokensOf(1)).toBe(4);
  });

  it("frees a shared page only when every idle holder is cut, and never cuts a busy slot's pages", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 8));
    pool.adopt(1, 0, 8);
    pool.commit(2, seq(500, 4));
    // Slot 1 is busy: the shared pages cannot go; only slot 2's page and nothing of slot 0's.
    expect(pool.evictablePages([0, 2])).toBe(1);
    expect([...pool.evict(1, [0, 2])]).toEqual([[2, 0]]);
    expect(pool.usedPages()).toBe(2);
    expect(pool.tokensOf(0)).toBe(8);
    // Both holders idle: both pages can go.
    expect(pool.evictablePages([0, 1])).toBe(2);
    pool.evict(2, [0, 1]);
    expect(pool.usedPages()).toBe(0);
  });

  it("privatePages counts what dropping a slot's tail would free", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 12));
    pool.adopt(1, 0, 8);
    pool.commit(1, [1, 2, 3, 4, 5]);
    expect(pool.privatePages(1)).toBe(2);
    expect(pool.privatePages(0)).toBe(1);
    expect(pool.privatePages(0, 8)).toBe(1);
    expect(pool.privatePages(1, 12)).toBe(1);
  });

  it("keys pages by adapter set: the same tokens under other LoRA adapters are other pages", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.assign(0, "A");
    pool.commit(0, seq(0, 8));
    pool.commit(1, seq(0, 8));
    expect(pool.lookup(seq(0, 10), "A")).toEqual({ tokens: 8, holders: [0] });
    expect(pool.lookup(seq(0, 10))).toEqual({ tokens: 8, holders: [1] });
    expect(pool.lookup(seq(0, 10), "B")).toEqual({ tokens: 0, holders: [] });
    // A slot that changes adapter set drops its pages, even where the tokens are equal.
    pool.assign(0, "B");
    expect(pool.tokensOf(0)).toBe(0);
    pool.commit(0, seq(0, 8));
    expect(pool.lookup(seq(0, 10), "A").tokens).toBe(0);
    expect(pool.lookup(seq(0, 10), "B")).toEqual({ tokens: 8, holders: [0] });
    expect(pool.usedPages()).toBe(4);
  });

  it("allocate reserves the pages a round needs, or says preempt and reserves nothing", () => {
    const pool = new KvPagePool(4, 4, true);
    pool.commit(0, seq(0, 6));
    expect(pool.allocate(0, 2)).toBe(0); // the last page has room for 2
    expect(pool.allocate(0, 7)).toBe(2);
    expect(pool.usedPages()).toBe(4);
    // What is reserved already counts: asking again takes nothing more.
    expect(pool.allocate(0, 7)).toBe(0);
    expect(pool.allocate(1, 1)).toBe("preempt");
    expect(pool.usedPages()).toBe(4);
    // Committing fills the reserved pages and gives back what the round did not use.
    pool.commit(0, seq(6, 3));
    expect(pool.usedPages()).toBe(3);
    expect(pool.tokens(0)).toEqual(seq(0, 9));
    expect(pool.allocate(1, 4)).toBe(1);
    pool.truncate(1, 0);
    expect(pool.usedPages()).toBe(3);
  });

  it("pages committed token by token index the same prefixes as pages committed at once", () => {
    const pool = new KvPagePool(4, 100, true);
    for (const t of seq(0, 10)) {
      expect(pool.allocate(0, 1)).not.toBe("preempt");
      pool.commit(0, [t]);
    }
    pool.commit(1, seq(0, 10));
    expect(pool.usedPages()).toBe(6);
    expect(pool.lookup(seq(0, 10))).toEqual({ tokens: 8, holders: [0, 1] });
    expect(pool.tokens(0)).toEqual(pool.tokens(1));
  });

  it("truncate inside a full page unindexes it and keeps the cut part on a private page", () => {
    const pool = new KvPagePool(4, 100, true);
    pool.commit(0, seq(0, 8));
    pool.adopt(1, 0, 8);
    pool.truncate(0, 6);
    expect(pool.tokens(0)).toEqual(seq(0, 6));
    // Slot 1 still holds both full pages; slot 0 holds the first and a private partial copy.
    expect(pool.lookup(seq(0, 9))).toEqual({ tokens: 8, holders: [1] });
    expect(pool.lookup(seq(0, 5))).toEqual({ tokens: 4, holders: [0, 1] });
    expect(pool.usedPages()).toBe(3);
    pool.commit(0, [6, 7]);
    expect(pool.lookup(seq(0, 9))).toEqual({ tokens: 8, holders: [0, 1] });
  });
});
