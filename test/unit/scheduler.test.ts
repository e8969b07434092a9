import { describe, it, expect } from "vitest";
import { Scheduler, commonPrefixLength, type SchedTask, type Slot, type StepOutcome } from "../../src/engine/scheduler.js";

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

class FakeSlot implements Slot {
  cache: number[] = [];
  private script: number[] = [];
  private pos = 0;
  private pendingPrompt = 0;
  failAt = -1;
  constructor(
    readonly id: number,
    private readonly engine: FakeEngine,
    private readonly outputs: Map<SchedTask, number[]>,
    private readonly chunk: number,
  ) {}
  cachedTokens() {
    return this.cache;
  }
  async prepare(task: SchedTask) {
    const reused = Math.min(commonPrefixLength(this.cache, task.prompt), task.prompt.length - 1);
    this.cache = [...task.prompt];
    this.script = this.outputs.get(task) ?? [];
    this.pos = 0;
    this.pendingPrompt = task.prompt.length - reused;
    return reused;
  }
  nextStepTokens() {
    return this.pendingPrompt > 0 ? Math.min(this.pendingPrompt, this.chunk) : 1;
  }
  step(): Promise<StepOutcome> {
    this.engine.step(this.id);
    if (this.pendingPrompt > this.chunk) {
      this.pendingPrompt -= this.chunk;
      return Promise.resolve({ prefill: true });
    }
    this.pendingPrompt = 0;
    if (this.pos === this.failAt) return Promise.reject(new Error("decode failed"));
    const token = this.script[this.pos++];
    return Promise.resolve(token === undefined ? { token: 0, eog: true } : { token, eog: false });
  }
  async release() {}
}

function task(prompt: number[], maxTokens = 100) {
  let resolve = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  const t = {
    prompt,
    cancelled: false,
    tokens: [] as number[],
    slot: -1,
    reused: -1,
    error: null as unknown,
    released: false,
    done,
    onAdmitted(slotId: number, reused: number) {
      t.slot = slotId;
      t.reused = reused;
    },
    onToken(r: { token: number; eog: boolean }) {
      if (r.eog) return true;
      t.tokens.push(r.token);
      return t.tokens.length >= maxTokens;
    },
    onError(e: unknown) {
      t.error = e;
    },
    onReleased() {
      t.released = true;
      resolve();
    },
  };
  return t;
}

function setup(nSlots: number, chunk = 1000) {
  const engine = new FakeEngine();
  const outputs = new Map<SchedTask, number[]>();
  const slots = Array.from({ length: nSlots }, (_, i) => new FakeSlot(i, engine, outputs, chunk));
  const rounds: Array<[number, number]> = [];
  const scheduler = new Scheduler([...slots].reverse(), (tokens, sequences) => rounds.push([tokens, sequences]));
  return { engine, outputs, slots, scheduler, rounds };
}

describe("Scheduler", () => {
  it("steps every active slot in one tick, in ascending slot order", async () => {
    const { engine, outputs, scheduler } = setup(3);
    const tasks = [task([1]), task([2]), task([3])];
    tasks.forEach((t, i) => outputs.set(t, Array.from({ length: 5 }, (_, k) => 100 * i + k)));
    tasks.forEach((t) => scheduler.submit(t));
    await Promise.all(tasks.map((t) => t.done));
    expect(tasks.map((t) => t.tokens.length)).toEqual([5, 5, 5]);
    // 5 tokens + the EOG step, all three slots batched together every round.
    expect(engine.batches).toHaveLength(6);
    for (const b of engine.batches) expect(b).toEqual([0, 1, 2]);
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
    expect(waiting.tokens).toEqual([7, 8]);
    // The waiting task joined while the long one was still decoding: some batch holds both.
    expect(engine.batches.some((b) => b.includes(long.slot) && b.includes(waiting.slot) && b.length === 2)).toBe(true);
    expect(waiting.slot).toBe(short.slot);
  });

  it("frees a cancelled task's slot within one round", async () => {
    const { outputs, scheduler } = setup(1);
    const t = task([1]);
    outputs.set(t, Array.from({ length: 1000 }, (_, i) => i));
    scheduler.submit(t);
    await new Promise((r) => setTimeout(r, 5));
    t.cancelled = true;
    const before = t.tokens.length;
    await t.done;
    expect(t.tokens.length - before).toBeLessThanOrEqual(1);
    expect(t.released).toBe(true);
    const next = task([2]);
    outputs.set(next, [5]);
    scheduler.submit(next);
    await next.done;
    expect(next.tokens).toEqual([5]);
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
    // a evaluates 5 prompt tokens; b reuses 3 cached ones and evaluates 1; then one token each.
    expect(rounds).toEqual([[6, 2], [2, 2], [2, 2]]);
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
    expect(long.tokens).toEqual([9]);
    expect(decoding.tokens).toEqual([1, 2, 3, 4, 5, 6]);
    // The 10-token prompt went in chunks of 4, 4, 2 while the other slot decoded one token a round.
    const withLong = rounds.filter(([, seqs]) => seqs === 2).map(([tokens]) => tokens);
    expect(withLong.slice(0, 3)).toEqual([5, 5, 3]);
    expect(Math.max(...rounds.map(([t]) => t))).toBeLessThanOrEqual(5);
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
    expect(good.tokens).toEqual([4, 5, 6]);
    await scheduler.idle();
    expect(scheduler.snapshot().slots.every((s) => s.phase === "idle")).toBe(true);
  });
});
