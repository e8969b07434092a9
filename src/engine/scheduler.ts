/**
 * Continuous-batching scheduler: pure logic over a slot interface and the KV page pool, so it
 * is unit-tested with fakes.
 *
 * - Lockstep rounds: each round advances every decoding slot by one step and evaluates up to
 *   `prefillBudget` prompt tokens of the prefilling ones, oldest request first; the steps are
 *   issued in ascending slot id in the same tick and become one batched decode.
 * - Choices (n > 1), llama-server's parent and child tasks: the first choice of a request
 *   evaluates the prompt; the others wait until it has, then fork its cache: its full pages are
 *   copied (shared cells in a unified pool), whether prefix reuse is on or not.
 * - Prefix reuse: a request takes the free slot whose cache shares the longest prefix with it, or
 *   copies the longest run of cached full pages from any other slot (shared cells in a unified
 *   pool). Only caches computed under the request's adapter set count: LoRA adapters change the
 *   KV values, so a slot's cache, and the page hashes, belong to the adapter set it ran with. A
 *   request whose prompt shares pages with a prompt still being prefilled waits for them instead
 *   of computing them a second time (a burst of agents with one system prompt).
 * - A unified pool is finite: admission needs pages for the tokens to evaluate plus a reserve,
 *   idle cached pages are evicted LRU, and when a round cannot grow every sequence the youngest
 *   request is preempted: its pages are freed and it is requeued with its tokens so far, to
 *   resume where it stopped.
 * - Adapter groups: llama.cpp applies LoRA adapters per context, so one round (one decode
 *   batch) runs only the active requests of one adapter set. When several sets are active the
 *   rounds go to the set served least recently, so the groups alternate; `onGroup` switches
 *   the context's adapters before the round's steps are issued.
 * - Plan, then execute: `planRound` decides a round without touching a sequence (pages
 *   allocated, idle pages evicted and requests preempted in the page pool, the adapter set, the
 *   steps and their tokens) and returns it as a `RoundPlan`; `execute` then does it on the
 *   slots: cuts the evicted caches, releases the preempted, steps the rest in one batch.
 */
import type { KvPagePool, KvPoolStats } from "./kv/page-pool.js";
import type { Request, StepResult } from "./request.js";

/**
 * A step either evaluated a chunk of the prompt (no token yet) or produced a token. `evaluated`:
 * the tokens the step added to the slot's KV cache, which the page pool commits.
 */
export type StepOutcome = { evaluated: readonly number[] } & ({ prefill: true } | (StepResult & { prefill?: false }));

export interface Slot {
  readonly id: number;
  /**
   * Tokens this slot's KV cache holds now (kept after a request ends, for prefix reuse). Read
   * when a request is placed, never per round: the page pool tracks the cache from the steps.
   */
  cachedTokens(): readonly number[];
  /**
   * Bind a request: keep the longest common prefix of the cache and `request.tokens()` (nothing
   * when `reuse` is false) and drop the rest; returns how many of its tokens are reused.
   */
  prepare(request: Request, reuse: boolean): Promise<number>;
  /**
   * Replace this slot's cache with the first `tokens` cached tokens of `donor`. False when the
   * copy failed; the cache is then empty.
   */
  copyPrefix(donor: Slot, tokens: number): Promise<boolean>;
  /** Drop the cached tokens from `keep` on. */
  truncate(keep: number): Promise<void>;
  /** The most tokens the next step can evaluate: the rest of the prompt while prefilling, then the decode step's (1, or an injection). */
  nextStepTokens(): number;
  /**
   * Evaluates `tokens` tokens (at most nextStepTokens()). While prefilling they are the next
   * chunk of the prompt, so a long prompt shares rounds with other sequences' decoding instead
   * of freezing them; the step that evaluates the last chunk samples the first token, and each
   * later step evaluates the token sampled last.
   */
  step(tokens: number): Promise<StepOutcome>;
  /** End the request's evaluation; the KV cache stays for the next request. */
  release(): Promise<void>;
}

export type SlotPhase = "idle" | "prefill" | "decode";

export interface SchedulerSnapshot {
  queued: number;
  /** Tokens of the queued requests: what admission still has to evaluate. */
  queuedTokens: number;
  /** Running requests, including those a slot has not stepped yet. */
  running: number;
  /** Requests preempted since start. */
  preemptions: number;
  kv: KvPoolStats & { unified: boolean };
  slots: Array<{ id: number; phase: SlotPhase; cachedTokens: number }>;
}

/** One round, decided before any of it runs; the page pool already reflects it. */
export interface RoundPlan {
  /** Idle slots whose caches lose their tails (their pages are freed): slot id to tokens kept. */
  evictions: Map<number, number>;
  /** Requests preempted for room, youngest first, their pages freed and the requests requeued. */
  preempted: Array<{ slotId: number; request: Request }>;
  /** The adapter set the round runs; undefined when no request runs. */
  group: string | undefined;
  /** The slots that step, in ascending id, and the tokens each evaluates (its pages allocated). */
  steps: Array<{ slotId: number; tokens: number }>;
  /** The tokens of all steps: the round's single batched decode. */
  tokens: number;
}

export interface SchedulerOptions {
  kv: KvPagePool;
  /**
   * Prompt tokens a round evaluates, all prefilling requests together, oldest request first
   * (vLLM's token budget for chunked prefill): `decoding` when a stream of the round decodes (a
   * bigger chunk would hold its next token back longer), `idle` when none does (nothing waits;
   * bigger batches prefill faster). Decode steps are not counted: a stream never waits for a prompt.
   */
  prefillBudget: { decoding: number; idle: number };
  /**
   * Every prompt the round's budget covers finishes in it (llama-server's scheduling): a burst's
   * streams start in the same round and, asking for equal lengths, end in the same round, so a
   * stream is not held back by the next burst's prompts. Off (the default): at most one prompt
   * finishes per round, so a burst's first requests start first.
   */
  finishTogether?: boolean;
  /** Reuse cached prefixes (in place, copied or shared); off only to measure what it gains. */
  prefixReuse: boolean;
  /** Sees each round's plan once its steps are issued (`plan.tokens`: the batched decode's tokens). */
  onRound?: (plan: RoundPlan) => void;
  /** Called before each round with the adapter key of the requests it runs; the round waits for it. */
  onGroup?: (adapterKey: string) => Promise<void> | void;
}

/** Free pages an admission leaves for the running sequences to grow into before preemption. */
const RESERVE_PAGES = 1;

interface Plan {
  slot: Slot;
  /** Tokens of the request that will not be evaluated. */
  reused: number;
  /** Copy `reused` tokens from this slot first. */
  donor?: Slot;
}

/**
 * The adapter set the next round runs: of the sets with active requests, the one whose last round
 * is oldest (never served first); ties go to the set holding the oldest request.
 */
export function pickGroup(
  active: Iterable<{ key: string; arrival: number }>,
  lastServed: ReadonlyMap<string, number>,
): string | undefined {
  let best: { key: string; served: number; arrival: number } | undefined;
  for (const { key, arrival } of active) {
    const served = lastServed.get(key) ?? -1;
    if (!best || served < best.served || (served === best.served && arrival < best.arrival)) best = { key, served, arrival };
  }
  return best?.key;
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Scheduler {
  private readonly slots: readonly Slot[];
  private readonly slotById: ReadonlyMap<number, Slot>;
  /** Waiting and preempted requests, by arrival. */
  private readonly queue: Request[] = [];
  /** Running requests (prefill or decode) by slot id. */
  private readonly active = new Map<number, Request>();
  private readonly lastUsed = new Map<number, number>();
  private readonly kv: KvPagePool;
  private readonly prefixReuse: boolean;
  private readonly prefillBudget: { decoding: number; idle: number };
  private readonly finishTogether: boolean;
  private readonly onRound: (plan: RoundPlan) => void;
  private readonly onGroup: (adapterKey: string) => Promise<void> | void;
  /** The adapter set each slot's cache was computed with. */
  private readonly slotKeys = new Map<number, string>();
  /** Round number each adapter set last ran in. */
  private readonly groupServed = new Map<string, number>();
  private rounds = 0;
  private useCounter = 0;
  private arrivals = 0;
  private preemptions = 0;
  private running: Promise<void> | null = null;

  constructor(slots: readonly Slot[], options: SchedulerOptions) {
    this.slots = [...slots].sort((a, b) => a.id - b.id);
    this.slotById = new Map(this.slots.map((s) => [s.id, s]));
    this.kv = options.kv;
    this.prefixReuse = options.prefixReuse;
    const { decoding, idle } = options.prefillBudget;
    if (!(decoding >= 1 && idle >= 1)) throw new Error(`prefill budgets must be at least 1, not ${decoding} and ${idle}`);
    this.prefillBudget = options.prefillBudget;
    this.finishTogether = options.finishTogether ?? false;
    this.onRound = options.onRound ?? (() => {});
    this.onGroup = options.onGroup ?? (() => {});
    for (const slot of this.slots) this.kv.commit(slot.id, slot.cachedTokens());
  }

  submit(request: Request): void {
    request.arrival = ++this.arrivals;
    request.status = "waiting";
    this.queue.push(request);
    this.kick();
  }

  snapshot(): SchedulerSnapshot {
    return {
      queued: this.queue.length,
      queuedTokens: this.queue.reduce((sum, r) => sum + r.tokens().length, 0),
      running: this.active.size,
      preemptions: this.preemptions,
      kv: { ...this.kv.stats(), unified: this.kv.shared },
      slots: this.slots.map((s) => ({
        id: s.id,
        phase: this.active.get(s.id)?.status === "decode" ? "decode" : this.active.has(s.id) ? "prefill" : "idle",
        cachedTokens: this.kv.tokensOf(s.id),
      })),
    };
  }

  /** Resolves when no request is queued or running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 || this.active.size > 0) {
      const blocked = await this.admit();
      if (this.active.size === 0) {
        // Nothing runs, so nothing will free pages or finish a prefix: a request that found no
        // room cannot wait. Without one, the queue holds requests that came after admission
        // looked (while a cancelled one was dropped): the next pass takes them.
        if (blocked) {
          this.queue.splice(this.queue.indexOf(blocked), 1);
          blocked.sink.onError(new Error("the KV pool cannot hold this request even when empty"));
          this.released(blocked);
        }
        continue;
      }
      await this.round();
    }
  }

  /**
   * After a failure the slot's cache is unknown: the pool takes it from the slot again. The
   * one place that reads a whole cache after admission, off the round path.
   */
  private resync(slot: Slot): void {
    this.kv.assign(slot.id, this.slotKeys.get(slot.id) ?? "");
    this.kv.truncate(slot.id, 0);
    this.kv.commit(slot.id, slot.cachedTokens());
  }

  private freeSlots(): Slot[] {
    return this.slots.filter((s) => !this.active.has(s.id));
  }

  /** Starts the queued requests that can start; returns the one that found no room, which stops it. */
  private async admit(): Promise<Request | undefined> {
    for (let i = 0; i < this.queue.length; ) {
      const request = this.queue[i]!;
      if (request.cancelled) {
        this.queue.splice(i, 1);
        this.released(request);
        continue;
      }
      const free = this.freeSlots();
      if (free.length === 0) return undefined;
      if (this.waitsForParent(request)) {
        i++;
        continue;
      }
      const plan = this.plan(request, free);
      if (this.waitsForLeader(request, plan)) {
        i++;
        continue;
      }
      // First come, first served for pages: later requests do not overtake one that waits for room.
      if (!(await this.makeRoom(request, plan))) return request;
      this.queue.splice(i, 1);
      await this.start(request, plan);
    }
    return undefined;
  }

  /** The request is done with: off the books, then its sink hears of it. */
  private released(request: Request): void {
    request.status = "finished";
    request.slotId = undefined;
    request.sink.onReleased();
  }

  private async start(request: Request, plan: Plan): Promise<void> {
    const { slot } = plan;
    this.active.set(slot.id, request);
    request.status = "prefill";
    request.slotId = slot.id;
    this.lastUsed.set(slot.id, ++this.useCounter);
    // A cache computed with other adapters is of no use: it goes, and the slot takes the request's set.
    const key = request.adapterKey;
    const sameAdapters = (this.slotKeys.get(slot.id) ?? "") === key;
    this.slotKeys.set(slot.id, key);
    try {
      if (plan.donor) {
        const copied = await slot.copyPrefix(plan.donor, plan.reused);
        if (copied) this.kv.adopt(slot.id, plan.donor.id, plan.reused);
        else this.kv.truncate(slot.id, 0);
      }
      const reused = await slot.prepare(request, plan.donor !== undefined || (this.prefixReuse && sameAdapters));
      // The pages of a cache computed with other adapters go; the adopted or kept prefix stays.
      this.kv.assign(slot.id, key);
      this.kv.truncate(slot.id, reused);
      this.kv.touch(slot.id);
      request.sink.onAdmitted(slot.id, reused);
    } catch (err) {
      this.active.delete(slot.id);
      this.resync(slot);
      request.sink.onError(err);
      this.released(request);
    }
  }

  /**
   * A child choice waits while its parent is queued or evaluating the prompt: then it forks the
   * parent's cache instead of evaluating the prompt a second time.
   */
  private waitsForParent(request: Request): boolean {
    const parent = request.parent;
    return parent !== undefined && !parent.cancelled && (parent.status === "waiting" || parent.status === "prefill");
  }

  /** Where a request runs and how much of it is reused: forked from its parent, in place, or copied from another slot. */
  private plan(request: Request, free: Slot[]): Plan {
    const tokens = request.tokens();
    // At least one token must be evaluated to get logits for the next sampled token.
    const limit = tokens.length - 1;
    const lru = (a: Slot, b: Slot) => (this.lastUsed.get(a.id) ?? 0) - (this.lastUsed.get(b.id) ?? 0);
    const byAge = [...free].sort(lru);
    const fork = this.forkPlan(request, byAge, limit);
    if (!this.prefixReuse) return fork ?? { slot: byAge[0]!, reused: 0 };
    let best: Plan = fork ?? { slot: byAge[0]!, reused: 0 };
    const key = request.adapterKey;
    for (const slot of byAge) {
      if ((this.slotKeys.get(slot.id) ?? "") !== key) continue;
      const reused = Math.min(commonPrefixLength(slot.cachedTokens(), tokens), limit);
      if (reused > best.reused) best = { slot, reused };
    }
    const match = this.kv.lookup(tokens, key);
    const copy = Math.min(match.tokens, limit - (limit % this.kv.pageTokens));
    if (copy > best.reused) {
      const donor = this.slots.find(
        (s) => match.holders.includes(s.id) && commonPrefixLength(s.cachedTokens(), tokens) >= copy,
      );
      // The copy replaces the target's cache: take the least recently used free slot.
      if (donor) return { slot: byAge.find((s) => s !== donor) ?? byAge[0]!, reused: copy, donor };
    }
    return best;
  }

  /**
   * A child choice whose parent runs copies the parent's full pages of the prompt (the parent's
   * cache holds the prompt, then its own output) into the least recently used free slot.
   */
  private forkPlan(request: Request, byAge: Slot[], limit: number): Plan | undefined {
    const parentSlot = request.parent?.slotId;
    if (parentSlot === undefined || request.parent!.status !== "decode") return undefined;
    const shared = Math.min(request.prompt.length, limit, this.kv.tokensOf(parentSlot));
    const copy = shared - (shared % this.kv.pageTokens);
    if (copy === 0) return undefined;
    return { slot: byAge[0]!, reused: copy, donor: this.slotById.get(parentSlot)! };
  }

  /**
   * True when a running request that is still prefilling will soon hold pages this request
   * needs: copying them then beats computing them twice.
   */
  private waitsForLeader(request: Request, plan: Plan): boolean {
    if (!this.prefixReuse) return false;
    const tokens = request.tokens();
    const B = this.kv.pageTokens;
    for (const [slotId, leader] of this.active) {
      if (leader.status === "decode" || leader.cancelled || leader.adapterKey !== request.adapterKey) continue;
      const shared = Math.min(commonPrefixLength(leader.tokens(), tokens), tokens.length - 1);
      const pages = shared - (shared % B);
      if (pages <= plan.reused) continue;
      if (this.kv.tokensOf(slotId) < pages) return true;
    }
    return false;
  }

  /**
   * Unified pool: makes sure the request's new tokens fit, evicting idle cached pages (least
   * recently used first) when needed; false when they cannot fit until running requests end.
   */
  private async makeRoom(request: Request, plan: Plan): Promise<boolean> {
    if (!this.kv.shared) return true;
    const keep = plan.donor ? 0 : plan.reused;
    const need = this.kv.pagesFor(request.tokens().length - plan.reused) + RESERVE_PAGES;
    const target = plan.slot.id;
    // Preparing the target drops what it does not keep.
    const freed = this.kv.privatePages(target, Math.ceil(keep / this.kv.pageTokens) * this.kv.pageTokens);
    const available = this.kv.freePages() + freed - this.committedPages();
    if (available >= need) return true;
    const idle = this.freeSlots()
      .map((s) => s.id)
      .filter((id) => id !== target && id !== plan.donor?.id);
    if (available + this.kv.evictablePages(idle) < need) return false;
    await this.applyEviction(this.kv.evict(need - available, idle));
    return true;
  }

  /** Pages the admitted requests still in prefill will take for the rest of their prompts. */
  private committedPages(): number {
    let pages = 0;
    for (const [slotId, request] of this.active) {
      if (request.status === "decode") continue;
      pages += this.kv.pagesToGrow(slotId, Math.max(0, request.tokens().length - this.kv.tokensOf(slotId)));
    }
    return pages;
  }

  /** The pool cut these slots' pages already; their sequences drop the same tokens. */
  private async applyEviction(cuts: Map<number, number>): Promise<void> {
    for (const [slotId, keep] of cuts) await this.slotById.get(slotId)!.truncate(keep);
  }

  private async round(): Promise<void> {
    const cancelled = this.slots.filter((s) => this.active.get(s.id)?.cancelled);
    await Promise.all(cancelled.map((s) => this.finish(s)));
    await this.execute(this.planRound());
  }

  /**
   * Decides the next round without touching a sequence: the adapter set whose turn it is, then
   * its requests' steps, oldest request first. Every decoding request steps; the prefilling ones
   * share the round's prefill budget in arrival order, and at most one prompt is finished per
   * round (the ones after it evaluate all but their last token): a burst's prompts finish one
   * round apart, first come first, instead of all together after the last (the mean time to
   * first token of N prompts nearly halves), and their streams end apart too (`finishTogether`
   * lifts the rule). A request left without budget waits for the next round. Unified pool: each
   * step gets the pages of its tokens, oldest first; when the pool says "preempt", idle cached
   * pages are evicted, then the youngest request is preempted, until the step fits or one
   * request is left.
   */
  private planRound(): RoundPlan {
    const plan: RoundPlan = { evictions: new Map(), preempted: [], group: undefined, steps: [], tokens: 0 };
    const byAge = [...this.active].sort((a, b) => a[1].arrival - b[1].arrival);
    plan.group = pickGroup(byAge.map(([, r]) => ({ key: r.adapterKey, arrival: r.arrival })), this.groupServed);
    const inGroup = byAge.filter(([, r]) => r.adapterKey === plan.group);
    const decoding = inGroup.some(([, r]) => r.status === "decode");
    let budget = decoding ? this.prefillBudget.decoding : this.prefillBudget.idle;
    let finishing = false;
    const wanted: Array<{ slotId: number; tokens: number }> = [];
    for (const [slotId, request] of inGroup) {
      const most = this.slotById.get(slotId)!.nextStepTokens();
      let tokens = most;
      if (request.status !== "decode") {
        tokens = Math.min(most, budget, finishing ? most - 1 : most);
        budget -= tokens;
        if (tokens === most && !this.finishTogether) finishing = true;
      }
      if (tokens > 0) wanted.push({ slotId, tokens });
    }
    if (this.kv.shared) {
      for (const { slotId, tokens } of wanted) {
        while (this.active.has(slotId) && this.kv.allocate(slotId, tokens) === "preempt") {
          const short = this.kv.pagesToGrow(slotId, tokens) - this.kv.freePages();
          const cuts = this.kv.evict(short, this.freeSlots().map((s) => s.id));
          for (const [id, keep] of cuts) plan.evictions.set(id, keep);
          if (cuts.size > 0) continue;
          if (this.active.size <= 1) break;
          plan.preempted.push(this.planPreemption());
        }
      }
    }
    for (const step of wanted.filter((w) => this.active.has(w.slotId)).sort((a, b) => a.slotId - b.slotId)) {
      plan.steps.push(step);
      plan.tokens += step.tokens;
    }
    return plan;
  }

  /** Takes the youngest request off its slot and requeues it by age; its pages go now. */
  private planPreemption(): { slotId: number; request: Request } {
    let youngest: [number, Request] | undefined;
    for (const item of this.active) if (!youngest || item[1].arrival > youngest[1].arrival) youngest = item;
    const [slotId, request] = youngest!;
    this.active.delete(slotId);
    request.preempt();
    this.preemptions++;
    // Pages it shares stay with their other holders; it recomputes the rest on resume.
    this.kv.truncate(slotId, 0);
    const at = this.queue.findIndex((r) => r.arrival > request.arrival);
    this.queue.splice(at === -1 ? this.queue.length : at, 0, request);
    return { slotId, request };
  }

  /** Runs a plan on the slots: evictions and preemptions first, then every step in one batch. */
  private async execute(plan: RoundPlan): Promise<void> {
    await this.applyEviction(plan.evictions);
    for (const { slotId, request } of plan.preempted) {
      const slot = this.slotById.get(slotId)!;
      request.sink.onPreempted();
      await slot.release();
      await slot.truncate(0);
    }
    const group = plan.group;
    if (group === undefined) return;
    // Only the sets with active requests are remembered: a set that comes back counts as new.
    const activeKeys = new Set([...this.active.values()].map((r) => r.adapterKey));
    for (const key of this.groupServed.keys()) if (!activeKeys.has(key)) this.groupServed.delete(key);
    this.groupServed.set(group, ++this.rounds);
    const live = plan.steps.map(({ slotId, tokens }) => [this.slotById.get(slotId)!, this.active.get(slotId)!, tokens] as const);
    try {
      await this.onGroup(group);
    } catch (err) {
      // The adapters could not be applied: this group's requests fail, the others go on.
      for (const [, request] of live) request.sink.onError(err);
      await Promise.all(live.map(([slot]) => this.finish(slot)));
      return;
    }
    // Issue every step synchronously, in ascending slot order, before awaiting any of them.
    const steps = live.map(([slot, , tokens]) => slot.step(tokens));
    this.onRound(plan);
    const results = await Promise.allSettled(steps);
    const finished: Slot[] = [];
    results.forEach((r, i) => {
      const [slot, request] = live[i]!;
      if (r.status === "rejected") {
        this.resync(slot);
        request.sink.onError(r.reason);
        finished.push(slot);
        return;
      }
      this.kv.commit(slot.id, r.value.evaluated);
      if (r.value.prefill) {
        if (request.cancelled) finished.push(slot);
        return;
      }
      request.status = "decode";
      if (request.cancelled || request.sink.onToken(r.value)) finished.push(slot);
    });
    await Promise.all(finished.map((s) => this.finish(s)));
    // Allocation is per round: the sequences of other adapter sets give their pages back until their turn.
    for (const slotId of this.active.keys()) this.kv.unreserve(slotId);
  }

  private async finish(slot: Slot): Promise<void> {
    const request = this.active.get(slot.id);
    this.active.delete(slot.id);
    try {
      await slot.release();
    } finally {
      // What it reserved and did not use goes back; its cache is the most recently used.
      this.kv.unreserve(slot.id);
      this.kv.touch(slot.id);
      if (request) this.released(request);
    }
  }
}
