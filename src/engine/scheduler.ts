/**
 * Continuous-batching scheduler: pure logic over a slot interface, so it is unit-tested with
 * fakes. Each round advances every active slot by one step, issued in ascending slot id in
 * the same tick: node-llama-cpp packs evaluations queued in one tick into one llama_decode,
 * and a non-ascending order makes llama.cpp split the batch.
 */

export interface StepResult {
  token: number;
  /** End-of-generation token (or the evaluator ended on its own). */
  eog: boolean;
}

/** A step either evaluated a chunk of the prompt (no token yet) or produced a token. */
export type StepOutcome = { prefill: true } | (StepResult & { prefill?: false });

export interface Slot {
  readonly id: number;
  /** Tokens this slot's KV cache holds now (kept after a request ends, for prefix reuse). */
  cachedTokens(): readonly number[];
  /** Bind a task: keep the longest common prefix in the KV cache; returns how many prompt tokens are reused. */
  prepare(task: SchedTask): Promise<number>;
  /** Tokens the next step() evaluates: a prompt chunk while prefilling, then 1. */
  nextStepTokens(): number;
  /**
   * While prefilling, evaluates the next bounded chunk of the prompt, so a long prompt shares
   * rounds with other sequences' decoding instead of freezing them; the step that evaluates the
   * last chunk samples the first token, and each later step evaluates the last token.
   */
  step(): Promise<StepOutcome>;
  /** End the task's evaluation; the KV cache stays for the next request. */
  release(): Promise<void>;
}

export interface SchedTask {
  readonly prompt: readonly number[];
  /** Set when the client went away or the deadline passed; the scheduler frees the slot next round. */
  cancelled: boolean;
  onAdmitted(slotId: number, reusedTokens: number): void;
  /** Returns true when the task is finished (stop, length, stop string). */
  onToken(result: StepResult): boolean;
  onError(err: unknown): void;
  /** Called once the slot is free again, whatever the outcome. */
  onReleased(): void;
}

export type SlotPhase = "idle" | "prefill" | "decode";

export interface SchedulerSnapshot {
  queued: number;
  /** Prompt tokens of the queued tasks: what admission still has to evaluate. */
  queuedTokens: number;
  /** Running requests, including those a slot has not stepped yet. */
  running: number;
  slots: Array<{ id: number; phase: SlotPhase; cachedTokens: number }>;
}

export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class Scheduler {
  private readonly queue: SchedTask[] = [];
  private readonly active = new Map<number, SchedTask>();
  /** Slots whose task has produced its first token (prompt evaluated). */
  private readonly decoding = new Set<number>();
  private readonly lastUsed = new Map<number, number>();
  private useCounter = 0;
  private running: Promise<void> | null = null;

  /** `onRound` sees the tokens evaluated by each round's single batched decode. */
  constructor(
    private readonly slots: readonly Slot[],
    private readonly onRound: (tokens: number, sequences: number) => void = () => {},
  ) {
    this.slots = [...slots].sort((a, b) => a.id - b.id);
  }

  submit(task: SchedTask): void {
    this.queue.push(task);
    this.kick();
  }

  snapshot(): SchedulerSnapshot {
    return {
      queued: this.queue.length,
      queuedTokens: this.queue.reduce((sum, t) => sum + t.prompt.length, 0),
      running: this.active.size,
      slots: this.slots.map((s) => ({
        id: s.id,
        phase: !this.active.has(s.id) ? "idle" : this.decoding.has(s.id) ? "decode" : "prefill",
        cachedTokens: s.cachedTokens().length,
      })),
    };
  }

  /** Resolves when no task is queued or running. */
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
      await this.admit();
      if (this.active.size === 0) continue;
      await this.round();
    }
  }

  /** Longest cached prefix wins; ties go to the least recently used slot. */
  private pickSlot(task: SchedTask, free: Slot[]): Slot {
    let best = free[0]!;
    let bestScore = -1;
    for (const slot of free) {
      const score = commonPrefixLength(slot.cachedTokens(), task.prompt) * 1e9 - (this.lastUsed.get(slot.id) ?? 0);
      if (score > bestScore) {
        best = slot;
        bestScore = score;
      }
    }
    return best;
  }

  private async admit(): Promise<void> {
    while (this.queue.length > 0) {
      const free = this.slots.filter((s) => !this.active.has(s.id));
      const task = this.queue[0]!;
      if (task.cancelled) {
        this.queue.shift();
        task.onReleased();
        continue;
      }
      if (free.length === 0) return;
      this.queue.shift();
      const slot = this.pickSlot(task, free);
      this.lastUsed.set(slot.id, ++this.useCounter);
      try {
        const reused = await slot.prepare(task);
        this.active.set(slot.id, task);
        task.onAdmitted(slot.id, reused);
      } catch (err) {
        task.onError(err);
        task.onReleased();
      }
    }
  }

  private async round(): Promise<void> {
    const entries = this.slots.filter((s) => this.active.has(s.id)).map((s) => [s, this.active.get(s.id)!] as const);
    const live = entries.filter(([, t]) => !t.cancelled);
    await Promise.all(entries.filter(([, t]) => t.cancelled).map(([s]) => this.finish(s)));
    // Issue every step synchronously, in ascending slot order, before awaiting any of them.
    const batchTokens = live.reduce((sum, [slot]) => sum + slot.nextStepTokens(), 0);
    const steps = live.map(([slot]) => slot.step());
    this.onRound(batchTokens, live.length);
    const results = await Promise.allSettled(steps);
    const finished: Slot[] = [];
    results.forEach((r, i) => {
      const [slot, task] = live[i]!;
      if (r.status === "rejected") {
        task.onError(r.reason);
        finished.push(slot);
        return;
      }
      if (r.value.prefill) {
        if (task.cancelled) finished.push(slot);
        return;
      }
      this.decoding.add(slot.id);
      if (task.cancelled || task.onToken(r.value)) finished.push(slot);
    });
    await Promise.all(finished.map((s) => this.finish(s)));
  }

  private async finish(slot: Slot): Promise<void> {
    const task = this.active.get(slot.id);
    this.active.delete(slot.id);
    this.decoding.delete(slot.id);
    try {
      await slot.release();
    } finally {
      task?.onReleased();
    }
  }
}
