import { describe, it, expect } from "vitest";
import type { Token } from "node-llama-cpp";
import { Scheduler, commonPrefixLength, pickGroup, type RoundPlan, type Slot, type StepOutcome } from "../../src/engine/scheduler.js";
import { Request, type RequestSink } from "../../src/engine/request.js";
import { KvPagePool } from "../../src/engine/kv/page-pool.js";

/** A fake engine: records which slots stepped in each tick (one tick = one llama_decode batch). */
class FakeEngine {
  batches: number[][] = [];
  private current: number[] | null = null;
  step(id: number): void {
    if (!this.current) {
      this.current = [];
      this.batches.push(this.current);
      queueMicrotask(() => (this.current = null));
    }
    this.current.push(id);
  }
}

/**
 * A fake sequence that models its KV cache exactly: a step evaluates the pending prompt chunk
 * or the token sampled last, then samples the task's next scripted token.
 */
class FakeSlot implements Slot {
  cache: number[] = [];
  copiedFrom = -1;
  private task: Request | null = null;
  private pending: number[] = [];
  private lastSampled: number | null = null;
  failAt = -1;
  constructor(
    readonly id: number,
    private readonly engine: FakeEngine,
    private readonly outputs: Map<Request, number[]>,
  ) {}
  /** Reads of the whole cache. */
  cachedReads = 0;
  cachedTokens() {
    this.cachedReads++;
    return this.cache;
  }
  async prepare(request: Request, reuse: boolean) {
    const tokens = request.tokens();
    const reused = reuse ? Math.min(commonPrefixLength(this.cache, tokens), tokens.length - 1) : 0;
    this.cache = this.cache.slice(0, reused);
    this.task = request;
    this.pending = tokens.slice(reused);
    this.lastSampled = null;
    return reused;
  }
  async copyPrefix(donor: Slot, tokens: number) {
    this.cache = donor.cachedTokens().slice(0, tokens);
    this.copiedFrom = donor.id;
    return true;
  }
  async truncate(keep: number) {
    this.cache = this.cache.slice(0, keep);
  }
  nextStepTokens() {
    return this.pending.length > 0 ? this.pending.length : this.task!.decodeStepTokens();
  }
  step(tokens: number): Promise<StepOutcome> {
    this.engine.step(this.id);
    if (tokens > this.nextStepTokens()) return Promise.reject(new Error(`a step of ${tokens} tokens, ${this.nextStepTokens()} allowed`));
    if (this.pending.length > tokens) {
      const evaluated = this.pending.splice(0, tokens);
      this.cache.push(...evaluated);
      return Promise.resolve({ prefill: true, evaluated });
    }
    const evaluated = this.pending.length > 0 ? this.pending.splice(0) : (this.task!.takeInjection() ?? [this.lastSampled!]);
    this.cache.push(...evaluated);
    const pos = this.task!.outputTokens.length;
    if (pos === this.failAt) return Promise.reject(new Error("decode failed"));
    const token = (this.outputs.get(this.task!) ?? [])[pos];
    this.lastSampled = token ?? null;
    return Promise.resolve(token === undefined ? { token: 0, eog: true, evaluated } : { token, eog: false, evaluated });
  }
  async release() {
    this.task = null;
    this.lastSampled = null;
  }
}

let ids = 0;

/** A request that is its own sink: records what the scheduler told it, generates up to `maxTokens`. */
class FakeRequest extends Request implements RequestSink {
  readonly evaluateOptions = {};
  slot = -1;
  reused = -1;
  admissions = 0;
  /** Preemptions it heard of. */
  preempted = 0;
  error: unknown = null;
  released = false;
  readonly done: Promise<void>;
  private resolve = () => {};
  constructor(
    prompt: number[],
    private readonly maxTokens: number,
    adapterKey: string,
    choice?: { index: number; parent: Request | undefined },
  ) {
    super({ id: ++ids, prompt, adapterKey, ...choice }, (self) => self as FakeRequest);
    this.done = new Promise<void>((r) => (this.resolve = r));
  }
  /** Generated tokens. */
  get out(): number[] {
    return this.outputTokens;
  }
  // Properties, not methods: tests wrap them and call the original unbound.
  onAdmitted = (slotId: number, reused: number) => {
    this.slot = slotId;
    this.reused = reused;
    this.admissions++;
  };
  onToken = (r: { token: number; eog: boolean }) => {
    if (r.eog) return true;
    this.outputTokens.push(r.token);
    return this.outputTokens.length >= this.maxTokens;
  };
  onPreempted = () => {
    this.preempted++;
  };
  onError = (e: unknown) => {
    this.error = e;
  };
  onReleased = () => {
    this.released = true;
    this.resolve();
  };
}

/** Calls `fn` when `request` hears a token while it has generated `count`, before it takes the token. */
function beforeToken(request: FakeRequest, count: number, fn: () => void): void {
  const onToken = request.onToken;
  request.onToken = (r) => {
    if (request.out.length === count) fn();
    return onToken(r);
  };
}

function task(prompt: number[], maxTokens = 100, adapterKey = "") {
  return new FakeRequest(prompt, maxTokens, adapterKey);
}

/** The `n` choices of one request: the first is the parent of the others. */
function choices(prompt: number[], n: number, maxTokens = 100): FakeRequest[] {
  const out: FakeRequest[] = [];
  for (let index = 0; index < n; index++) out.push(new FakeRequest(prompt, maxTokens, "", { index, parent: out[0] }));
  return out;
}

function setup(
  nSlots: number,
  chunk: number | { decoding: number; idle: number } = 1000,
  kv?: { pageTokens?: number; pages?: number; unified?: boolean; prefixReuse?: boolean },
  finishTogether?: boolean,
) {
  const engine = new FakeEngine();
  const outputs = new Map<Request, number[]>();
  const slots = Array.from({ length: nSlots }, (_, i) => new FakeSlot(i, engine, outputs));
  const rounds: Array<[number, number]> = [];
  const plans: RoundPlan[] = [];
  /** The adapter key of each round, in order. */
  const groups: string[] = [];
  const pool = new KvPagePool(kv?.pageTokens ?? 16, kv?.pages ?? 1_000_000, kv?.unified ?? false);
  const scheduler = new Scheduler([...slots].reverse(), {
    kv: pool,
    prefixReuse: kv?.prefixReuse ?? true,
    prefillBudget: typeof chunk === "number" ? { decoding: chunk, idle: chunk } : chunk,
    finishTogether,
    onRound: (plan) => {
      plans.push(plan);
      rounds.push([plan.tokens, plan.steps.length]);
    },
    onGroup: (key) => {
      groups.push(key);
    },
  });
  return { engine, outputs, slots, scheduler, rounds, plans, pool, groups };
}

describe("Scheduler", () => {
  it("steps every active slot in one tick, in ascending slot order", async () => {
    const { engine, outputs, scheduler } = setup(3);
    const tasks = [task([1]), task([2]), task([3])];
    tasks.forEach((t, i) => outputs.set(t, Array.from({ length: 5 }, (_, k) => 100 * i + k)));
    tasks.forEach((t) => scheduler.submit(t));
    await Promise.all(tasks.map((t) => t.done));
    expect(tasks.map((t) => t.out.length)).toEqual([5, 5, 5]);
    // 5 tokens + the EOG step each; one prompt finishes per round, so the requests start a round
    // apart, and from then on every running slot steps in each round's one batch.
    expect(engine.batches).toEqual([[0], [0, 1], [0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 2], [2]]);
  });

  it("queues beyond the slot count and admits between rounds as slots free", async () => {
    const { engine, outputs, scheduler } = setup(2);
    const short = task([1]);
    const long = task([2]);
    const waiting = task([3]);
    outputs.set(short, [1, 2]);
    outputs.set(long, [1, 2, 3, 4, 5, 6]);
    outputs.set(waiting, [7, 8]);
    [short, long, waiting].forEach((t) => scheduler.submit(t));
    expect(scheduler.snapshot().queued).toBeGreaterThanOrEqual(1);
    await Promise.all([short.done, long.done, waiting.done]);
    expect(waiting.out).toEqual([7, 8]);
    // The waiting task joined while the long one was still decoding: some batch holds both.
    expect(engine.batches.some((b) => b.includes(long.slot) && b.includes(waiting.slot) && b.length === 2)).toBe(true);
    expect(waiting.slot).toBe(short.slot);
  });

  it("frees a cancelled task's slot within one round", async () => {
    const { outputs, scheduler } = setup(1);
    // Far more tokens than the test waits for: only the cancel can end this task early.
    const t = task([1], 10_000);
    outputs.set(t, Array.from({ length: 10_000 }, (_, i) => i));
    const onToken = t.onToken;
    let cancelledAt = -1;
    // Cancelled from inside a round, as a client hanging up mid-stream is.
    t.onToken = (r) => {
      const finished = onToken(r);
      if (t.out.length === 3) {
        t.cancelled = true;
        cancelledAt = t.out.length;
      }
      return finished;
    };
    scheduler.submit(t);
    await t.done;
    expect(cancelledAt).toBe(3);
    expect(t.out.length - cancelledAt).toBeLessThanOrEqual(1);
    expect(t.released).toBe(true);
    const next = task([2]);
    outputs.set(next, [5]);
    scheduler.submit(next);
    await next.done;
    expect(next.out).toEqual([5]);
  });

  it("drops a task cancelled while queued without running it", async () => {
    const { outputs, scheduler } = setup(1);
    const first = task([1]);
    const queued = task([2]);
    outputs.set(first, [1, 2, 3]);
    scheduler.submit(first);
    scheduler.submit(queued);
    queued.cancelled = true;
    await Promise.all([first.done, queued.done]);
    expect(queued.slot).toBe(-1);
    expect(queued.released).toBe(true);
  });

  it("serves a request that arrives while admission drops a cancelled one, with nothing running", async () => {
    const { outputs, scheduler } = setup(2, 1000, { pages: 64, unified: true });
    const gone = task([1, 2, 3]);
    const next = task([4, 5, 6], 3);
    outputs.set(next, [7, 8, 9]);
    gone.cancelled = true;
    // The engine submits from a promise callback: here, between admission's pass (which dropped
    // `gone` and found the queue empty) and the loop's look at what runs.
    const onReleased = gone.onReleased;
    gone.onReleased = () => {
      onReleased();
      queueMicrotask(() => scheduler.submit(next));
    };
    scheduler.submit(gone);
    await next.done;
    expect(next.error).toBeNull();
    expect(next.out).toEqual([7, 8, 9]);
  });

  it("fails a request the empty pool cannot hold, and serves the next", async () => {
    const { outputs, scheduler } = setup(2, 1000, { pageTokens: 4, pages: 4, unified: true });
    const huge = task(Array.from({ length: 40 }, (_, i) => i + 1));
    const small = task([1, 2], 2);
    outputs.set(small, [5, 6]);
    scheduler.submit(huge);
    scheduler.submit(small);
    await Promise.all([huge.done, small.done]);
    expect(String(huge.error)).toContain("the KV pool cannot hold this request even when empty");
    expect(small.error).toBeNull();
    expect(small.out).toEqual([5, 6]);
  });

  it("picks the free slot with the longest cached prefix", async () => {
    const { outputs, slots, scheduler } = setup(3);
    slots[0]!.cache = [9, 9, 9];
    slots[1]!.cache = [1, 2, 3, 4];
    slots[2]!.cache = [1, 2];
    const t = task([1, 2, 3, 4, 5, 6]);
    outputs.set(t, [1]);
    scheduler.submit(t);
    await t.done;
    expect(t.slot).toBe(1);
    expect(t.reused).toBe(4);
  });

  it("reports each round's batch: unreused prompt tokens on a first step, one token after", async () => {
    const { outputs, slots, scheduler, rounds } = setup(2);
    slots[1]!.cache = [7, 7, 1];
    const a = task([1, 2, 3, 4, 5]);
    const b = task([7, 7, 1, 9]);
    outputs.set(a, [1, 2]);
    outputs.set(b, [3, 4]);
    scheduler.submit(a);
    scheduler.submit(b);
    await Promise.all([a.done, b.done]);
    // a evaluates 5 prompt tokens (one prompt finishes per round: b waits); then b, reusing 3
    // cached tokens, evaluates 1 beside a's first decode step; then one token each.
    expect(rounds).toEqual([[5, 1], [2, 2], [2, 2], [1, 1]]);
  });

  it("prefills a long prompt in chunks that share rounds with another sequence's decoding", async () => {
    const { outputs, scheduler, rounds } = setup(2, 4);
    const decoding = task([1]);
    outputs.set(decoding, [1, 2, 3, 4, 5, 6]);
    scheduler.submit(decoding);
    const long = task(Array.from({ length: 10 }, (_, i) => 100 + i));
    outputs.set(long, [9]);
    scheduler.submit(long);
    await Promise.all([decoding.done, long.done]);
    expect(long.out).toEqual([9]);
    expect(decoding.out).toEqual([1, 2, 3, 4, 5, 6]);
    // The rounds' budget is 4 prompt tokens: the first round's went to the other request's prompt
    // (1 token, it came first) and 3 of the long one's, then 4 and 3 while the other slot decoded.
    const withLong = rounds.filter(([, seqs]) => seqs === 2).map(([tokens]) => tokens);
    expect(withLong.slice(0, 3)).toEqual([4, 5, 4]);
    expect(Math.max(...rounds.map(([t]) => t))).toBeLessThanOrEqual(5);
  });

  it("shares the prefill budget first come, first served: in a burst the first prompt is done first", async () => {
    const { outputs, scheduler, plans } = setup(3, 8);
    const burst = [task([10, 11, 12, 13, 14, 15, 16, 17]), task([20, 21, 22, 23, 24, 25, 26, 27]), task([30, 31, 32, 33, 34, 35, 36, 37])];
    const firstTokenRound: number[] = [];
    burst.forEach((t, i) => {
      outputs.set(t, [i, i, i]);
      beforeToken(t, 0, () => (firstTokenRound[i] = plans.length));
    });
    burst.forEach((t) => scheduler.submit(t));
    await Promise.all(burst.map((t) => t.done));
    // One whole prompt per round, in arrival order; the decoding requests step every round beyond the budget.
    expect(firstTokenRound).toEqual([1, 2, 3]);
    expect(plans.slice(0, 3).map((p) => p.steps)).toEqual([
      [{ slotId: 0, tokens: 8 }],
      [{ slotId: 0, tokens: 1 }, { slotId: 1, tokens: 8 }],
      [{ slotId: 0, tokens: 1 }, { slotId: 1, tokens: 1 }, { slotId: 2, tokens: 8 }],
    ]);
    expect(burst.map((t) => t.out)).toEqual([[0, 0, 0], [1, 1, 1], [2, 2, 2]]);
  });

  it("finishes one prompt per round: the next prompts evaluate all but their last token meanwhile", async () => {
    const { outputs, scheduler, plans } = setup(3, 100);
    const burst = [task([1, 1, 1, 1, 1, 1, 1, 1]), task([2, 2, 2, 2, 2, 2, 2, 2]), task([3, 3, 3, 3, 3, 3, 3, 3])];
    burst.forEach((t, i) => outputs.set(t, [i]));
    burst.forEach((t) => scheduler.submit(t));
    await Promise.all(burst.map((t) => t.done));
    expect(plans.slice(0, 3).map((p) => p.steps)).toEqual([
      [{ slotId: 0, tokens: 8 }, { slotId: 1, tokens: 7 }, { slotId: 2, tokens: 7 }],
      [{ slotId: 0, tokens: 1 }, { slotId: 1, tokens: 1 }],
      [{ slotId: 1, tokens: 1 }, { slotId: 2, tokens: 1 }],
    ]);
    expect(burst.map((t) => t.out)).toEqual([[0], [1], [2]]);
  });

  it("finishTogether: a burst's prompts finish in one round and their streams stay in step", async () => {
    const { outputs, scheduler, plans } = setup(3, 100, undefined, true);
    const burst = [task([1, 1, 1, 1, 1, 1, 1, 1]), task([2, 2, 2, 2, 2, 2, 2, 2]), task([3, 3, 3, 3, 3, 3, 3, 3])];
    burst.forEach((t, i) => outputs.set(t, [i, i]));
    burst.forEach((t) => scheduler.submit(t));
    await Promise.all(burst.map((t) => t.done));
    const all = (tokens: number) => [0, 1, 2].map((slotId) => ({ slotId, tokens }));
    // Every prompt in the first round, then every stream steps in each round until all end together.
    expect(plans.map((p) => p.steps)).toEqual([all(8), all(1), all(1)]);
    expect(burst.map((t) => t.out)).toEqual([[0, 0], [1, 1], [2, 2]]);
  });

  it("takes the idle budget while no stream decodes and the decoding budget while one does", async () => {
    const { outputs, scheduler, plans } = setup(2, { decoding: 4, idle: 10 });
    const first = task(Array.from({ length: 10 }, (_, i) => 100 + i));
    const second = task(Array.from({ length: 10 }, (_, i) => 200 + i));
    outputs.set(first, Array.from({ length: 10 }, (_, i) => i));
    outputs.set(second, [1]);
    beforeToken(first, 0, () => scheduler.submit(second));
    scheduler.submit(first);
    await Promise.all([first.done, second.done]);
    // The whole first prompt in one round; the second's in chunks of 4 beside the first's decoding.
    expect(plans[0]!.steps).toEqual([{ slotId: 0, tokens: 10 }]);
    expect(plans.slice(1, 4).map((p) => p.steps.find((s) => s.slotId === 1)?.tokens)).toEqual([4, 4, 2]);
  });

  it("splits the budget where it runs out: the older prompt's rest, then the next one's start", async () => {
    const { outputs, scheduler, plans } = setup(2, 8);
    const a = task(Array.from({ length: 12 }, (_, i) => 100 + i));
    const b = task(Array.from({ length: 6 }, (_, i) => 200 + i));
    outputs.set(a, [1]);
    outputs.set(b, [2]);
    scheduler.submit(a);
    scheduler.submit(b);
    await Promise.all([a.done, b.done]);
    expect(plans.slice(0, 2).map((p) => p.steps)).toEqual([
      [{ slotId: 0, tokens: 8 }],
      [{ slotId: 0, tokens: 4 }, { slotId: 1, tokens: 4 }],
    ]);
    expect(plans[2]!.steps).toContainEqual({ slotId: 1, tokens: 2 });
  });

  it("plans an injection's tokens as its step", async () => {
    const { outputs, scheduler, plans, slots } = setup(1, 100, { pageTokens: 4, unified: true, pages: 100 });
    const t = task([1, 2, 3]);
    outputs.set(t, [7, 8, 9]);
    beforeToken(t, 0, () => t.inject([40, 41, 42, 43, 44] as Token[]));
    scheduler.submit(t);
    await t.done;
    expect(plans.map((p) => p.tokens)).toEqual([3, 5, 1, 1]);
    expect(slots[0]!.cache).toEqual([1, 2, 3, 40, 41, 42, 43, 44, 8, 9]);
  });

  it("fails only the task whose step throws; the others continue", async () => {
    const { outputs, slots, scheduler } = setup(2);
    const bad = task([1]);
    const good = task([2]);
    outputs.set(bad, [1, 2, 3]);
    outputs.set(good, [4, 5, 6]);
    slots[0]!.failAt = 1;
    scheduler.submit(bad);
    scheduler.submit(good);
    await Promise.all([bad.done, good.done]);
    expect((bad.error as Error).message).toBe("decode failed");
    expect(good.out).toEqual([4, 5, 6]);
    await scheduler.idle();
    expect(scheduler.snapshot().slots.every((s) => s.phase === "idle")).toBe(true);
  });

  it("copies a prefix cached by a busy slot into a free one instead of evaluating it", async () => {
    const { outputs, slots, scheduler, rounds } = setup(2, 1000, { pageTokens: 4 });
    const system = Array.from({ length: 10 }, (_, i) => 50 + i);
    const first = task([...system, 1]);
    const second = task([...system, 2, 3]);
    outputs.set(first, Array.from({ length: 30 }, (_, i) => i));
    outputs.set(second, [7]);
    // The second request arrives while the first is decoding.
    beforeToken(first, 2, () => scheduler.submit(second));
    scheduler.submit(first);
    await Promise.all([first.done, second.done]);
    // Two full 4-token pages of the shared 10 tokens are copied; the other 4 tokens are evaluated.
    expect(second.slot).toBe(1);
    expect(slots[1]!.copiedFrom).toBe(0);
    expect(second.reused).toBe(8);
    expect(rounds.some(([tokens, seqs]) => seqs === 2 && tokens === 1 + 4)).toBe(true);
  });

  it("holds a request until the running prefill of the same prefix can be copied (a burst with one prompt)", async () => {
    const { outputs, slots, scheduler, rounds } = setup(3, 8, { pageTokens: 4 });
    const prompt = Array.from({ length: 30 }, (_, i) => 100 + i);
    const choices = [task(prompt), task(prompt), task(prompt)];
    choices.forEach((t, i) => outputs.set(t, [i, i]));
    choices.forEach((t) => scheduler.submit(t));
    await Promise.all(choices.map((t) => t.done));
    expect(choices.map((t) => t.reused)).toEqual([0, 28, 28]);
    expect(slots[1]!.copiedFrom).toBe(0);
    expect(slots[2]!.copiedFrom).toBe(0);
    // The prompt was evaluated once (30 tokens in chunks of 8) plus 2 tokens per follower.
    const evaluated = rounds.reduce((sum, [tokens]) => sum + tokens, 0);
    expect(evaluated).toBe(30 + 2 * 2 + 3 * 2);
  });

  for (const prefixReuse of [true, false]) {
    it(`runs a request's choices as parent and children: the parent prefills, the children fork its cache (prefix reuse ${prefixReuse ? "on" : "off"})`, async () => {
      const { outputs, slots, scheduler, rounds } = setup(3, 8, { pageTokens: 4, prefixReuse });
      const prompt = Array.from({ length: 30 }, (_, i) => 100 + i);
      const n = choices(prompt, 3);
      n.forEach((t, i) => outputs.set(t, [i, i]));
      n.forEach((t) => scheduler.submit(t));
      await Promise.all(n.map((t) => t.done));
      expect(n.map((t) => t.reused)).toEqual([0, 28, 28]);
      expect(slots[n[1]!.slot]!.copiedFrom).toBe(n[0]!.slot);
      expect(slots[n[2]!.slot]!.copiedFrom).toBe(n[0]!.slot);
      expect(n.map((t) => t.out)).toEqual([[0, 0], [1, 1], [2, 2]]);
      // The prompt was evaluated once (30 tokens in chunks of 8) plus 2 tokens per child.
      const evaluated = rounds.reduce((sum, [tokens]) => sum + tokens, 0);
      expect(evaluated).toBe(30 + 2 * 2 + 3 * 2);
      expect(n.every((t) => t.status === "finished")).toBe(true);
    });
  }

  it("a child whose parent was cancelled before its prefill ran evaluates the prompt itself", async () => {
    const { outputs, scheduler } = setup(3, 8, { pageTokens: 4, prefixReuse: false });
    const prompt = Array.from({ length: 12 }, (_, i) => 100 + i);
    const [parent, child] = choices(prompt, 2);
    // Another request keeps the scheduler running while the two arrive.
    const other = task([1]);
    outputs.set(other, [1, 2, 3]);
    outputs.set(child!, [5]);
    parent!.cancelled = true;
    scheduler.submit(other);
    scheduler.submit(parent!);
    scheduler.submit(child!);
    await Promise.all([other.done, parent!.done, child!.done]);
    expect(parent!.admissions).toBe(0);
    expect(child!.reused).toBe(0);
    expect(child!.out).toEqual([5]);
  });

  it("does no prefix reuse at all when it is off", async () => {
    const { outputs, slots, scheduler } = setup(2, 1000, { pageTokens: 4, prefixReuse: false });
    slots[0]!.cache = [1, 2, 3, 4, 5];
    const t = task([1, 2, 3, 4, 5, 6]);
    outputs.set(t, [1]);
    scheduler.submit(t);
    await t.done;
    expect(t.reused).toBe(0);
    expect(slots[t.slot]!.copiedFrom).toBe(-1);
  });

  it("unified pool: admission waits for free pages, not only for a free slot", async () => {
    // 6 pages of 4 tokens: one 10-token prompt + 10 tokens of output fills 5 of them.
    const { outputs, scheduler, pool } = setup(2, 1000, { pageTokens: 4, pages: 6, unified: true });
    const a = task(Array.from({ length: 10 }, (_, i) => i));
    const b = task(Array.from({ length: 10 }, (_, i) => 100 + i));
    outputs.set(a, Array.from({ length: 10 }, (_, i) => 200 + i));
    outputs.set(b, [1]);
    const events: string[] = [];
    const [aReleased, bAdmitted] = [a.onReleased, b.onAdmitted];
    a.onReleased = () => (events.push("a released"), aReleased());
    b.onAdmitted = (slot, reused) => (events.push("b admitted"), bAdmitted(slot, reused));
    scheduler.submit(a);
    scheduler.submit(b);
    await Promise.all([a.done, b.done]);
    expect(a.out).toHaveLength(10);
    expect(b.out).toEqual([1]);
    // a took 3 pages + 1 in reserve; b's 3 + 1 did not fit in the 2 left, though a slot was free.
    expect(events).toEqual(["a released", "b admitted"]);
    expect(a.preempted + b.preempted).toBe(0);
    expect(pool.usedPages()).toBeLessThanOrEqual(6);
  });

  it("unified pool: evicts the least recently used idle pages to admit a request", async () => {
    const { outputs, slots, scheduler, pool } = setup(3, 1000, { pageTokens: 4, pages: 8, unified: true });
    const old = task(Array.from({ length: 8 }, (_, i) => i));
    const recent = task(Array.from({ length: 8 }, (_, i) => 50 + i));
    outputs.set(old, [1]);
    outputs.set(recent, [2]);
    scheduler.submit(old);
    await old.done;
    scheduler.submit(recent);
    await recent.done;
    // Both idle slots hold 9 tokens (3 pages each); the next prompt needs 3 pages + 1 reserve.
    expect(pool.usedPages()).toBe(6);
    const fresh = task(Array.from({ length: 12 }, (_, i) => 900 + i));
    outputs.set(fresh, [3]);
    scheduler.submit(fresh);
    await fresh.done;
    expect(fresh.out).toEqual([3]);
    // The old request's cache lost its tail pages; the recent one is intact.
    expect(slots[old.slot]!.cache.length).toBeLessThan(9);
    expect(slots[recent.slot]!.cache).toHaveLength(9);
  });

  it("unified pool: preempts the youngest request when the pool runs out and resumes it without a gap", async () => {
    const { outputs, scheduler, pool } = setup(2, 1000, { pageTokens: 4, pages: 10, unified: true });
    const older = task([1, 2, 3, 4]);
    const younger = task([5, 6, 7, 8]);
    const olderOut = Array.from({ length: 20 }, (_, i) => 100 + i);
    const youngerOut = Array.from({ length: 20 }, (_, i) => 300 + i);
    outputs.set(older, olderOut);
    outputs.set(younger, youngerOut);
    scheduler.submit(older);
    scheduler.submit(younger);
    await Promise.all([older.done, younger.done]);
    expect(older.preempted).toBe(0);
    expect(younger.preempted).toBeGreaterThanOrEqual(1);
    expect(younger.admissions).toBe(younger.preempted + 1);
    expect(older.out).toEqual(olderOut);
    expect(younger.out).toEqual(youngerOut);
    expect(scheduler.snapshot().preemptions).toBe(younger.preempted);
    expect(pool.usedPages()).toBeLessThanOrEqual(10);
  });

  describe("the page pool as the allocator", () => {
    /** The pool's pages hold exactly the tokens each slot's cache holds. */
    function expectMirrors(pool: KvPagePool, slots: FakeSlot[]): void {
      for (const slot of slots) expect(pool.tokens(slot.id)).toEqual(slot.cache);
    }

    for (const unified of [true, false]) {
      it(`${unified ? "unified" : "per-sequence"}: tracks every cache from the steps alone, through copies, eviction, preemption and adapter changes`, async () => {
        const { outputs, slots, scheduler, pool } = setup(3, 3, { pageTokens: 4, pages: unified ? 9 : 1_000_000, unified });
        const system = Array.from({ length: 9 }, (_, i) => 50 + i);
        const a = task([...system, 1]);
        const b = task([...system, 2]);
        const c = task([7, 8, 9, 10, 11], 100, "L");
        outputs.set(a, Array.from({ length: 14 }, (_, i) => 100 + i));
        outputs.set(b, Array.from({ length: 14 }, (_, i) => 200 + i));
        outputs.set(c, Array.from({ length: 6 }, (_, i) => 300 + i));
        [a, b, c].forEach((t) => scheduler.submit(t));
        await Promise.all([a.done, b.done, c.done]);
        expect(a.out).toHaveLength(14);
        expect(b.out).toHaveLength(14);
        expect(c.out).toHaveLength(6);
        if (unified) expect(a.preempted + b.preempted + c.preempted).toBeGreaterThan(0);
        expectMirrors(pool, slots);
        // A later request on another adapter set and one that reuses a cached prefix.
        const d = task([...system, 3], 100, "L");
        const e = task([...system, 1, 100, 101]);
        outputs.set(d, [1, 2]);
        outputs.set(e, [3]);
        scheduler.submit(d);
        scheduler.submit(e);
        await Promise.all([d.done, e.done]);
        expect(e.reused).toBeGreaterThan(0);
        expectMirrors(pool, slots);
        if (unified) expect(pool.usedPages()).toBeLessThanOrEqual(9);
      });
    }

    it("plans each round before running it: the youngest request preempted, its slot not stepping, the rest in ascending order", async () => {
      const { outputs, scheduler, plans } = setup(2, 1000, { pageTokens: 4, pages: 10, unified: true });
      const older = task([1, 2, 3, 4]);
      const younger = task([5, 6, 7, 8]);
      outputs.set(older, Array.from({ length: 20 }, (_, i) => 100 + i));
      outputs.set(younger, Array.from({ length: 20 }, (_, i) => 300 + i));
      scheduler.submit(older);
      scheduler.submit(younger);
      await Promise.all([older.done, younger.done]);
      const preempting = plans.filter((p) => p.preempted.length > 0);
      expect(preempting.length).toBe(younger.preempted);
      for (const plan of preempting) {
        expect(plan.preempted.map((p) => p.request)).toEqual([younger]);
        expect(plan.steps.map((s) => s.slotId)).toEqual([older.slot]);
      }
      for (const plan of plans) {
        const ids = plan.steps.map((s) => s.slotId);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
        expect(plan.tokens).toBe(plan.steps.reduce((sum, s) => sum + s.tokens, 0));
      }
    });

    it("plans the eviction of an idle cache when a running sequence grows into its pages", async () => {
      const { outputs, slots, scheduler, plans, pool } = setup(2, 1000, { pageTokens: 4, pages: 6, unified: true });
      const idle = task(Array.from({ length: 8 }, (_, i) => i));
      outputs.set(idle, [1]);
      scheduler.submit(idle);
      await idle.done;
      expect(pool.usedPages()).toBe(3);
      const growing = task([50, 51, 52, 53], 10);
      outputs.set(growing, Array.from({ length: 10 }, (_, i) => 60 + i));
      scheduler.submit(growing);
      await growing.done;
      expect(growing.out).toHaveLength(10);
      expect(growing.preempted).toBe(0);
      const evicting = plans.filter((p) => p.evictions.size > 0);
      expect(evicting).toHaveLength(1);
      // One page was short: only the idle cache's last page goes.
      expect([...evicting[0]!.evictions]).toEqual([[idle.slot, 8]]);
      expect(slots[idle.slot]!.cache).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(pool.tokens(idle.slot)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });

    it("reads no slot's whole cache per round: a 200-token generation reads as much as a 5-token one", async () => {
      const reads = async (maxTokens: number, unified: boolean) => {
        const { outputs, slots, scheduler } = setup(2, 1000, { pageTokens: 4, unified });
        const t = task(Array.from({ length: 40 }, (_, i) => i), maxTokens);
        outputs.set(t, Array.from({ length: maxTokens }, (_, i) => 500 + i));
        scheduler.submit(t);
        await t.done;
        expect(t.out).toHaveLength(maxTokens);
        return slots.reduce((sum, s) => sum + s.cachedReads, 0);
      };
      for (const unified of [true, false]) expect(await reads(200, unified)).toBe(await reads(5, unified));
    });
  });

  describe("LoRA adapter sets", () => {
    it("pickGroup: the set served least recently, never served first, then the oldest request", () => {
      const active = [
        { key: "a", arrival: 3 },
        { key: "b", arrival: 1 },
        { key: "", arrival: 2 },
      ];
      expect(pickGroup(active, new Map())).toBe("b");
      expect(pickGroup(active, new Map([["b", 1]]))).toBe("");
      expect(pickGroup(active, new Map([["b", 1], ["", 2]]))).toBe("a");
      expect(pickGroup(active, new Map([["b", 4], ["", 2], ["a", 3]]))).toBe("");
      expect(pickGroup([], new Map())).toBeUndefined();
    });

    it("never batches two adapter sets together and alternates the sets round by round", async () => {
      const { engine, outputs, scheduler, groups } = setup(4);
      const tasks = [task([1], 100, "A"), task([2], 100, "B"), task([3], 100, "A"), task([4], 100, "")];
      tasks.forEach((t, i) => outputs.set(t, Array.from({ length: 6 }, (_, k) => 10 * i + k)));
      tasks.forEach((t) => scheduler.submit(t));
      await Promise.all(tasks.map((t) => t.done));
      expect(tasks.map((t) => t.out.length)).toEqual([6, 6, 6, 6]);
      // One onGroup per round, and each round's batch holds only the slots of that round's set.
      expect(groups).toHaveLength(engine.batches.length);
      const keyOfSlot = new Map(tasks.map((t) => [t.slot, t.adapterKey]));
      engine.batches.forEach((batch, r) => {
        for (const slot of batch) expect(keyOfSlot.get(slot)).toBe(groups[r]);
      });
      // The three sets take turns, 7 steps per request (6 tokens + EOG). The second A task starts
      // one A round after the first (one prompt finishes per round), then shares every A round.
      const aRounds = engine.batches.filter((_, r) => groups[r] === "A").map((b) => b.length);
      expect(aRounds).toEqual([1, 2, 2, 2, 2, 2, 2, 1]);
      expect(groups.slice(0, 6)).toEqual(["A", "B", "", "A", "B", ""]);
      expect(groups.filter((g) => g === "B")).toHaveLength(7);
      expect(groups.filter((g) => g === "")).toHaveLength(7);
    });

    it("does not reuse a slot's cache computed under another adapter set", async () => {
      const { outputs, slots, scheduler } = setup(2);
      slots[0]!.cache = [1, 2, 3, 4];
      const adapted = task([1, 2, 3, 4, 5], 100, "A");
      outputs.set(adapted, [7]);
      scheduler.submit(adapted);
      await adapted.done;
      expect(adapted.reused).toBe(0);
      // The slot now holds an "A" cache: a base request with the same prefix cannot use it, an "A" one can.
      const base = task([1, 2, 3, 4, 5, 6], 100, "");
      outputs.set(base, [7]);
      scheduler.submit(base);
      await base.done;
      expect(base.reused).toBe(0);
      const again = task([1, 2, 3, 4, 5, 6], 100, "A");
      outputs.set(again, [7]);
      scheduler.submit(again);
      await again.done;
      expect(again.reused).toBeGreaterThan(0);
      expect(slots[again.slot]!.cache.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    });

    it("copies cached pages only from a slot that ran the same adapter set", async () => {
      const { outputs, slots, scheduler } = setup(3, 1000, { pageTokens: 4 });
      const system = Array.from({ length: 10 }, (_, i) => 50 + i);
      const first = task([...system, 1], 100, "A");
      const other = task([...system, 2], 100, "");
      const same = task([...system, 3], 100, "A");
      outputs.set(first, Array.from({ length: 30 }, (_, i) => i));
      outputs.set(other, [7]);
      outputs.set(same, [7]);
      beforeToken(first, 2, () => {
        scheduler.submit(other);
        scheduler.submit(same);
      });
      scheduler.submit(first);
      await Promise.all([first.done, other.done, same.done]);
      expect(other.reused).toBe(0);
      expect(same.reused).toBe(8);
      expect(slots[same.slot]!.copiedFrom).toBe(first.slot);
    });
  });
});
