/**
 * Paged accounting of the KV cache: pure logic, unit-tested without a model.
 *
 * The pool holds `totalPages` pages of `pageTokens` cells. Each sequence (slot) has a page
 * table; a full page is content-addressed by a hash chain (its tokens and the hash of the page
 * before it), so equal hashes mean equal prefixes and the prefix index finds which slot holds
 * the longest run of a new prompt's pages. The chain starts from the sequence's LoRA adapter set
 * (its key), because adapters change the KV values: equal tokens under different adapters are
 * different pages, never shared.
 *
 * The pool is the allocator, kept up to date by each change rather than re-read: the scheduler
 * `allocate`s a sequence's pages before a round (or learns it must preempt), `commit`s the
 * tokens the round evaluated into them, `adopt`s (forks) a cached prefix, `truncate`s what a
 * sequence drops and `touch`es a sequence it used. Each call costs what it changes (the tokens
 * added, the pages dropped), never the context length, so a round's accounting does not grow
 * with the context.
 *
 * In a unified pool a prefix copied from another sequence shares its cells
 * (`llama_memory_seq_cp` tags them with both sequences), so `adopt` shares the donor's pages
 * and a page is freed when its last holder drops it. In a per-sequence pool every sequence
 * owns its region and a copy duplicates the pages. Partial pages and pages a sequence cut into
 * are counted whole: the accounting may only over-count, never under-count, or llama.cpp would
 * run out of cells before the scheduler preempts.
 */
import { createHash } from "node:crypto";

interface Page {
  readonly id: number;
  /** Token ids of the cells this page covers (at most pageTokens). */
  tokens: number[];
  /** Hash chain value once the page is full; full pages are in the prefix index. */
  hash: string | undefined;
  /** Slots whose page table holds this page. */
  readonly holders: Set<number>;
  lastUsed: number;
}

export interface PrefixMatch {
  /** Prompt tokens covered by full cached pages (a multiple of pageTokens). */
  tokens: number;
  /** Slots that hold all those pages at the start of their sequence. */
  holders: number[];
}

export interface KvPoolStats {
  pageTokens: number;
  totalPages: number;
  usedPages: number;
  /** Pages held by more than one sequence (prefixes shared without copying). */
  sharedPages: number;
}

/** The hash a chain starts from: the adapter set's key, hashed; "" (no adapters) keeps the plain chain. */
function rootHash(adapterKey: string): string {
  return adapterKey === "" ? "" : createHash("sha256").update(adapterKey).digest("base64url");
}

export function pageHash(previous: string, tokens: readonly number[]): string {
  const h = createHash("sha256");
  h.update(previous);
  h.update(Buffer.from(Uint32Array.from(tokens).buffer));
  return h.digest("base64url");
}

export class KvPagePool {
  private readonly tables = new Map<number, Page[]>();
  /** The root hash of each slot's chain (its adapter set). */
  private readonly roots = new Map<number, string>();
  /** Full pages by hash; several when sequences computed the same prefix on their own. */
  private readonly index = new Map<string, Set<Page>>();
  /** Pages allocated to a slot ahead of the tokens that will fill them (counted as used). */
  private readonly reserved = new Map<number, number>();
  private used = 0;
  private nextId = 0;
  private clock = 0;

  /** `shared`: a unified pool, where adopted prefixes share cells instead of copying them. */
  constructor(
    readonly pageTokens: number,
    readonly totalPages: number,
    readonly shared: boolean,
  ) {}

  usedPages(): number {
    return this.used;
  }

  freePages(): number {
    return this.totalPages - this.used;
  }

  stats(): KvPoolStats {
    let sharedPages = 0;
    const seen = new Set<Page>();
    for (const table of this.tables.values()) {
      for (const page of table) {
        if (page.holders.size > 1 && !seen.has(page)) {
          seen.add(page);
          sharedPages++;
        }
      }
    }
    return { pageTokens: this.pageTokens, totalPages: this.totalPages, usedPages: this.used, sharedPages };
  }

  /** Tokens the slot's page table covers. */
  tokensOf(slotId: number): number {
    const table = this.tables.get(slotId) ?? [];
    const last = table.at(-1);
    return last ? (table.length - 1) * this.pageTokens + last.tokens.length : 0;
  }

  /** Pages the slot would take to grow by `extraTokens`: its last page's free room is used first. */
  pagesToGrow(slotId: number, extraTokens: number): number {
    const last = this.tables.get(slotId)?.at(-1);
    const room = last && last.holders.size === 1 && last.hash === undefined ? this.pageTokens - last.tokens.length : 0;
    return Math.ceil(Math.max(0, extraTokens - room) / this.pageTokens);
  }

  /** Pages needed to hold `tokens` new tokens from a page boundary. */
  pagesFor(tokens: number): number {
    return Math.ceil(tokens / this.pageTokens);
  }

  /**
   * The adapter set (`adapterKey`, "" = none) the slot computes its cache with from now on; a
   * new set drops every page the slot holds.
   */
  assign(slotId: number, adapterKey: string): void {
    const root = rootHash(adapterKey);
    if ((this.roots.get(slotId) ?? "") !== root) this.truncate(slotId, 0);
    this.roots.set(slotId, root);
  }

  /**
   * Reserves the pages the slot needs to grow by `nTokens` (what it holds in reserve already
   * counts): the number of pages reserved now, or "preempt" when too few pages are free, in
   * which case nothing is reserved. `commit` fills reserved pages before taking new ones.
   */
  allocate(slotId: number, nTokens: number): number | "preempt" {
    const more = this.pagesToGrow(slotId, nTokens) - (this.reserved.get(slotId) ?? 0);
    if (more <= 0) return 0;
    if (more > this.freePages()) return "preempt";
    this.reserved.set(slotId, (this.reserved.get(slotId) ?? 0) + more);
    this.used += more;
    return more;
  }

  /**
   * The slot's sequence now also holds `tokens` (evaluated after what it held): they fill its
   * last page, then its reserved pages, then new ones. What stays reserved is given back.
   */
  commit(slotId: number, tokens: readonly number[]): void {
    const B = this.pageTokens;
    const table = this.tableOf(slotId);
    const now = ++this.clock;
    let last = table.at(-1);
    for (let t = 0; t < tokens.length; ) {
      // Only a private page that is not full grows in place; a shared or full one is followed by a new page.
      if (!last || last.hash !== undefined || last.holders.size > 1) {
        last = this.take(slotId, now);
        table.push(last);
      }
      const n = Math.min(B - last.tokens.length, tokens.length - t);
      for (let k = 0; k < n; k++) last.tokens.push(tokens[t + k]!);
      t += n;
      last.lastUsed = now;
      if (last.tokens.length === B) this.seal(last, table.length === 1 ? (this.roots.get(slotId) ?? "") : table.at(-2)!.hash!);
    }
    this.unreserve(slotId);
  }

  /**
   * The slot's sequence keeps its first `keep` tokens and drops the rest (and its reserve). A
   * page cut into that others share or that was full is replaced by a private page holding the
   * kept part.
   */
  truncate(slotId: number, keep: number): void {
    this.unreserve(slotId);
    const table = this.tables.get(slotId);
    if (!table || keep >= this.tokensOf(slotId)) return;
    const B = this.pageTokens;
    const at = Math.floor(keep / B);
    const inPage = keep - at * B;
    if (inPage === 0) return this.dropFrom(slotId, table, at);
    const page = table[at]!;
    this.dropFrom(slotId, table, at + 1);
    if (page.holders.size === 1 && page.hash === undefined) {
      page.tokens.length = inPage;
      return;
    }
    const kept = page.tokens.slice(0, inPage);
    this.dropFrom(slotId, table, at);
    const copy = this.newPage(slotId, kept, ++this.clock);
    table.push(copy);
  }

  /** The slot's pages were just used: eviction takes pages unused the longest first. */
  touch(slotId: number): void {
    const now = ++this.clock;
    for (const page of this.tables.get(slotId) ?? []) page.lastUsed = now;
  }

  /** Token ids the slot's pages hold, in order: what tests compare with a sequence's cache (a copy, O(context)). */
  tokens(slotId: number): number[] {
    return (this.tables.get(slotId) ?? []).flatMap((p) => p.tokens);
  }

  /**
   * The slot now holds the donor's first `tokens` tokens (a multiple of pageTokens), copied by
   * the engine. Unified: the pages are shared; per-sequence: the slot owns copies of them.
   */
  adopt(slotId: number, donorId: number, tokens: number): void {
    if (tokens % this.pageTokens !== 0) throw new Error(`adopt: ${tokens} is not a multiple of ${this.pageTokens}`);
    const donor = this.tables.get(donorId) ?? [];
    const count = tokens / this.pageTokens;
    if (count > donor.length) throw new Error(`adopt: slot ${donorId} holds ${donor.length} pages, not ${count}`);
    this.truncate(slotId, 0);
    const table = this.tableOf(slotId);
    this.roots.set(slotId, this.roots.get(donorId) ?? "");
    const now = ++this.clock;
    for (const page of donor.slice(0, count)) {
      page.lastUsed = now;
      if (this.shared) {
        page.holders.add(slotId);
        table.push(page);
      } else {
        const copy = this.newPage(slotId, [...page.tokens], now);
        copy.hash = page.hash;
        this.indexPage(copy);
        table.push(copy);
      }
    }
  }

  /** The longest run of the prompt's full pages that some slot holds under the adapter set `adapterKey`. */
  lookup(prompt: readonly number[], adapterKey = ""): PrefixMatch {
    const B = this.pageTokens;
    let hash = rootHash(adapterKey);
    let match: Set<Page> | undefined;
    let tokens = 0;
    for (let start = 0; start + B <= prompt.length; start += B) {
      hash = pageHash(hash, prompt.slice(start, start + B));
      const pages = this.index.get(hash);
      if (!pages) break;
      match = pages;
      tokens = start + B;
    }
    const holders = new Set<number>();
    for (const page of match ?? []) for (const id of page.holders) holders.add(id);
    return { tokens, holders: [...holders].sort((a, b) => a - b) };
  }

  /**
   * Frees at least `pages` pages by cutting the tails of the given idle slots, least recently
   * used page first (only a tail can go: the pages after a page depend on it). A page shared
   * with another idle slot is freed once every holder dropped it; one a busy slot holds stays.
   * Frees as much as it can up to `pages`; returns how many tokens each cut slot keeps, for the
   * engine to erase the rest from its sequence.
   */
  evict(pages: number, idleSlots: Iterable<number>): Map<number, number> {
    const idleSet = new Set(idleSlots);
    const idle = [...idleSet].filter((id) => (this.tables.get(id)?.length ?? 0) > 0);
    const cut = new Map<number, number>();
    let freed = 0;
    while (freed < pages) {
      let victim: number | undefined;
      let oldest = Infinity;
      for (const id of idle) {
        const tail = this.tables.get(id)!.at(-1);
        // A page a busy sequence also holds cannot be freed: cutting it would only lose this cache.
        if (tail && tail.lastUsed < oldest && heldOnlyBy(tail, idleSet)) {
          oldest = tail.lastUsed;
          victim = id;
        }
      }
      if (victim === undefined) break;
      const table = this.tables.get(victim)!;
      const page = table.pop()!;
      page.holders.delete(victim);
      if (page.holders.size === 0) {
        this.free(page);
        freed++;
      }
      cut.set(victim, table.length * this.pageTokens);
    }
    return cut;
  }

  /** Pages that cutting all of the given slots would free. */
  evictablePages(idleSlots: Iterable<number>): number {
    const idle = new Set(idleSlots);
    const counted = new Set<Page>();
    for (const id of idle) {
      for (const page of this.tables.get(id) ?? []) {
        if (heldOnlyBy(page, idle)) counted.add(page);
      }
    }
    return counted.size;
  }

  /** Pages only this slot holds (freed if it dropped everything). */
  privatePages(slotId: number, fromToken = 0): number {
    const table = this.tables.get(slotId) ?? [];
    return table.slice(Math.floor(fromToken / this.pageTokens)).filter((p) => p.holders.size === 1).length;
  }

  private tableOf(slotId: number): Page[] {
    let table = this.tables.get(slotId);
    if (!table) this.tables.set(slotId, (table = []));
    return table;
  }

  private newPage(slotId: number, tokens: number[], now: number): Page {
    this.used++;
    return { id: this.nextId++, tokens, hash: undefined, holders: new Set([slotId]), lastUsed: now };
  }

  /** A page for the slot to grow into: one it reserved, or a new one. */
  private take(slotId: number, now: number): Page {
    const reserved = this.reserved.get(slotId) ?? 0;
    if (reserved > 0) {
      // The reserved page is counted already.
      this.reserved.set(slotId, reserved - 1);
      this.used--;
    }
    return this.newPage(slotId, [], now);
  }

  /** Gives back the pages the slot reserved and did not fill. */
  unreserve(slotId: number): void {
    this.used -= this.reserved.get(slotId) ?? 0;
    this.reserved.delete(slotId);
  }

  private seal(page: Page, previousHash: string): void {
    page.hash = pageHash(previousHash, page.tokens);
    this.indexPage(page);
  }

  private dropFrom(slotId: number, table: Page[], from: number): void {
    for (const page of table.splice(from)) {
      page.holders.delete(slotId);
      if (page.holders.size === 0) this.free(page);
    }
  }

  private free(page: Page): void {
    this.used--;
    if (page.hash === undefined) return;
    const pages = this.index.get(page.hash);
    pages?.delete(page);
    if (pages?.size === 0) this.index.delete(page.hash);
  }

  private indexPage(page: Page): void {
    const pages = this.index.get(page.hash!) ?? new Set<Page>();
    pages.add(page);
    this.index.set(page.hash!, pages);
  }
}

/** Whether every sequence holding the page is among `slots` (cutting them all frees it). */
function heldOnlyBy(page: Page, slots: ReadonlySet<number>): boolean {
  for (const holder of page.holders) if (!slots.has(holder)) return false;
  return true;
}

function sameTokens(page: readonly number[], tokens: readonly number[], start: number, end: number): boolean {
  for (let t = start; t < end; t++) if (page[t - start] !== tokens[t]) return false;
  return true;
}
