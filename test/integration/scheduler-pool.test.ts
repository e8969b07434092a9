/**
 * The page pool as the allocator on real node-llama-cpp sequences: the scheduler keeps the pool
 * from what each step evaluated and never re-reads a cache per round, yet after chunked prefill,
 * prefix copies, eviction and preemption the pool's pages hold exactly the tokens each
 * sequence's KV cache holds, in a unified and in a per-sequence pool. One addon per process
 * (see backend.test.ts): both pools run on the unified-KV build, as the engine's unified mode does.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { LlamaLogLevel, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { scriptedModel } from "../helpers/models.js";
import { loadLlamaBackend, type LlamaBackend } from "../../src/engine/backend.js";
import { KvPagePool } from "../../src/engine/kv/page-pool.js";
import { LlamaSlot } from "../../src/engine/llama-slot.js";
import { Scheduler } from "../../src/engine/scheduler.js";
import { Request, type RequestSink } from "../../src/engine/request.js";

const SCRIPT = "Pages follow the steps, not the copies of the context.";
const PAGE = 16;

interface TestSink extends RequestSink {
  preempted: number;
  error: unknown;
  done: Promise<void>;
}

let ids = 0;

/**
 * `inject`: after `at` generated tokens the sampled token is replaced by these, as the engine
 * closes a thought at its budget; they count as generated, so a resumed request recomputes them.
 */
function task(prompt: Token[], maxTokens: number, inject?: { at: number; tokens: Token[] }): Request & { sink: TestSink } {
  let resolve = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  const request = new Request({ id: ++ids, prompt }, (r): TestSink => {
    const sink: TestSink = {
      evaluateOptions: {},
      preempted: 0,
      error: undefined as unknown,
      done,
      onAdmitted() {},
      onToken(result: { token: number; eog: boolean }) {
        if (result.eog) return true;
        const out = r.outputTokens;
        if (inject && out.length === inject.at) {
          r.inject(inject.tokens);
          out.push(...inject.tokens);
          return false;
        }
        out.push(result.token);
        return out.length >= maxTokens;
      },
      onPreempted() {
        sink.preempted++;
      },
      onError(err: unknown) {
        sink.error = err;
      },
      onReleased: () => resolve(),
    };
    return sink;
  });
  return request as Request & { sink: TestSink };
}

describe("the scheduler's page pool on real sequences", () => {
  let backend: LlamaBackend;
  let model: LlamaModel;
  const contexts: LlamaContext[] = [];
  beforeAll(async () => {
    backend = await loadLlamaBackend("unified", { logLevel: LlamaLogLevel.warn, logger: () => {} });
    model = await backend.llama.loadModel({ modelPath: await scriptedModel([SCRIPT], { loop: true }) });
  });
  afterAll(async () => {
    for (const c of contexts) await c.dispose();
    await model?.dispose();
    await backend?.llama.dispose();
  });

  /** `pages`: the pool the scheduler may use, at most what the context holds (fewer forces preemption). */
  async function run(unified: boolean, pages?: number) {
    const context = await model.createContext({ sequences: 3, contextSize: 256, batchSize: 256, ...(unified && { kvUnified: true }) });
    contexts.push(context);
    expect(context.kvUnified).toBe(unified);
    const cells = unified ? context.contextSize : 3 * context.contextSize;
    pages ??= Math.floor(cells / PAGE);
    expect(pages * PAGE).toBeLessThanOrEqual(cells);
    const pool = new KvPagePool(PAGE, pages, unified);
    const slots = [0, 1, 2].map((i) => new LlamaSlot(i, context.getSequence({ contextShift: { size: 0 } }), model));
    let maxUsed = 0;
    const scheduler = new Scheduler(slots, { kv: pool, prefixReuse: true, prefillBudget: { decoding: 24, idle: 24 }, onRound: () => (maxUsed = Math.max(maxUsed, pool.usedPages())) });
    const mirrors = () => {
      for (const slot of slots) expect(pool.tokens(slot.id)).toEqual([...slot.sequence.contextTokens]);
    };
    const system = model.tokenize("You answer in one line. ".repeat(6));
    const prompt = (q: string) => [...system, ...model.tokenize(`${q}\n`)];

    const injected = model.tokenize(" (injected)") as Token[];
    const first = ["alpha", "beta", "gamma"].map((q, i) => task(prompt(q), 24, i === 1 ? { at: 20, tokens: injected } : undefined));
    for (const t of first) scheduler.submit(t);
    await Promise.all(first.map((t) => t.sink.done));
    mirrors();
    // A second wave: copies the cached system prompt, evicts idle pages in a small pool.
    const second = ["delta", "alpha"].map((q) => task(prompt(q), 12));
    for (const t of second) scheduler.submit(t);
    await Promise.all(second.map((t) => t.sink.done));
    mirrors();
    const all = [...first, ...second];
    for (const t of all) expect(t.sink.error).toBeUndefined();
    return { all, pool, pages, maxUsed, preemptions: scheduler.snapshot().preemptions };
  }

  it("unified: a pool too small for all three requests preempts, resumes, and still mirrors every cache", async () => {
    const roomy = await run(true);
    // 39 prompt tokens (32 of them shared) and 24 generated: the three requests peak at 8 pages or more.
    const tight = await run(true, 6);
    expect(roomy.preemptions).toBe(0);
    expect(tight.preemptions).toBeGreaterThan(0);
    expect(tight.maxUsed).toBeLessThanOrEqual(tight.pages);
    // Greedy decoding: preempted and resumed requests generate what they generate with room.
    expect(tight.all.map((t) => t.outputTokens)).toEqual(roomy.all.map((t) => t.outputTokens));
    expect(roomy.all[0]!.outputTokens).toHaveLength(24);
  }, 300_000);

  it("per-sequence: copied prefixes are copies, and the pool mirrors every cache", async () => {
    const { all, pool } = await run(false);
    for (const t of all) expect(t.outputTokens.length).toBeGreaterThan(0);
    expect(pool.stats().sharedPages).toBe(0);
  }, 300_000);
});
