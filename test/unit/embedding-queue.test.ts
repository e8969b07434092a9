import { describe, it, expect } from "vitest";
import type { Token } from "node-llama-cpp";
import { EmbeddingQueue, l2Normalize, type EmbeddingEvaluator } from "../../src/engine/embedder.js";

/** A fake embedding context: records the first token of each evaluated input; its vector is [token, 0, 0]. */
class FakeEvaluator implements EmbeddingEvaluator {
  evaluated: number[] = [];
  failOn = -1;
  async getEmbeddingFor(tokens: Token[]) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    const first = tokens[0] as number;
    this.evaluated.push(first);
    if (first === this.failOn) throw new Error("decode failed");
    return { vector: [first, 0, 0] };
  }
}

const inputs = (...firsts: number[]) => firsts.map((t) => [t, 99] as Token[]);

describe("EmbeddingQueue", () => {
  it("evaluates one input per decode and lets requests take turns", async () => {
    const evaluator = new FakeEvaluator();
    const queue = new EmbeddingQueue(evaluator);
    const big = queue.run(1, inputs(10, 11, 12, 13), 8);
    const small = queue.run(2, inputs(20), 2);
    const [a, b] = await Promise.all([big, small]);
    // The one-input request waits for one of the big request's inputs, not for all four.
    expect(evaluator.evaluated).toEqual([10, 20, 11, 12, 13]);
    expect(a).toEqual({ vectors: Array.from({ length: 4 }, () => [1, 0, 0]), promptTokens: 8 });
    expect(b).toEqual({ vectors: [[1, 0, 0]], promptTokens: 2 });
    expect(queue.pending).toBe(0);
  });

  it("cancel rejects the request and evaluates none of its remaining inputs", async () => {
    const evaluator = new FakeEvaluator();
    const queue = new EmbeddingQueue(evaluator);
    const cancelled = queue.run(1, inputs(10, 11, 12), 6);
    const other = queue.run(2, inputs(20, 21), 4);
    queue.cancel(1);
    await expect(cancelled).rejects.toMatchObject({ info: { kind: "client_closed" } });
    await other;
    // 10 was already being evaluated when the cancel came.
    expect(evaluator.evaluated).toEqual([10, 20, 21]);
  });

  it("a failed decode fails its own request only", async () => {
    const evaluator = new FakeEvaluator();
    evaluator.failOn = 11;
    const queue = new EmbeddingQueue(evaluator);
    const failing = queue.run(1, inputs(10, 11, 12), 6);
    const other = queue.run(2, inputs(20, 21), 4);
    await expect(failing).rejects.toThrow("decode failed");
    expect((await other).vectors).toHaveLength(2);
    expect(evaluator.evaluated).toEqual([10, 20, 11, 21]);
  });
});

describe("l2Normalize", () => {
  it("scales to unit length and keeps direction; a zero vector stays zero", () => {
    expect(l2Normalize([3, -4])).toEqual([0.6, -0.8]);
    expect(l2Normalize([0, 0])).toEqual([0, 0]);
  });
});
