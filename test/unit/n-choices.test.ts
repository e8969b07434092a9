/** The pure pieces of n > 1: the engine's one stream of its choices' events, and the main process's handle on it. */
import { describe, it, expect } from "vitest";
import { choiceEvents, Request, type RequestSink } from "../../src/engine/request.js";
import { RequestHandle } from "../../src/router/request-handle.js";
import type { GenerationEvent } from "../../src/engine/types.js";

const sink: RequestSink = { evaluateOptions: {}, onAdmitted() {}, onToken: () => true, onPreempted() {}, onError() {}, onReleased() {} };

function choices(n: number): Request[] {
  const out: Request[] = [];
  for (let index = 0; index < n; index++) out.push(new Request({ id: 1, index, parent: out[0], prompt: [1, 2, 3] }, () => sink));
  return out;
}

const text = (index: number, t: string): GenerationEvent => ({ type: "text", index, text: t, tokens: 1 });
const done = (index: number): GenerationEvent => ({
  type: "done",
  index,
  finishReason: "stop",
  completionTokens: 1,
  reasoningTokens: 0,
  cachedTokens: 0,
  timings: { queueMs: 0, prefillMs: 0 },
});
const failed: GenerationEvent = { type: "failed", error: { kind: "internal" } };

describe("choiceEvents", () => {
  it("passes every choice's text and done events, with their index", () => {
    const seen: GenerationEvent[] = [];
    const c = choices(3);
    const emit = choiceEvents((e) => seen.push(e), c);
    const events = [text(1, "b"), text(0, "a"), done(1), text(2, "c"), done(0), done(2)];
    events.forEach(emit);
    expect(seen).toEqual(events);
    expect(c.some((r) => r.cancelled)).toBe(false);
  });

  it("a failure of one choice before any output fails the request once and cancels the others", () => {
    const seen: GenerationEvent[] = [];
    const c = choices(3);
    const emit = choiceEvents((e) => seen.push(e), c);
    emit(failed);
    // The others, cancelled, may still end or fail: the request has ended already.
    emit(text(1, "late"));
    emit(failed);
    emit(done(2));
    expect(seen).toEqual([failed]);
    expect(c.every((r) => r.cancelled)).toBe(true);
  });

  it("children name their parent, the first choice", () => {
    const [parent, ...children] = choices(3);
    expect(parent!.parent).toBeUndefined();
    expect(children.map((r) => [r.index, r.parent])).toEqual([
      [1, parent],
      [2, parent],
    ]);
  });
});

describe("RequestHandle", () => {
  const drain = async (handle: RequestHandle) => {
    const out: GenerationEvent[] = [];
    for await (const e of handle) out.push(e);
    return out;
  };

  it("ends once each of its n choices is done, not at the first done", async () => {
    const handle = new RequestHandle(() => {}, 2);
    handle.push(text(0, "a"));
    handle.push(done(0));
    expect(handle.finished).toBe(false);
    handle.push(text(1, "b"));
    handle.push(done(1));
    expect(handle.finished).toBe(true);
    handle.push(text(1, "after the end"));
    expect((await drain(handle)).map((e) => e.type)).toEqual(["text", "done", "text", "done"]);
  });

  it("ends at a failure, whatever choices are still running", async () => {
    const handle = new RequestHandle(() => {}, 3);
    handle.push(done(0));
    handle.push(failed);
    expect(handle.finished).toBe(true);
    expect(await drain(handle)).toEqual([done(0), failed]);
  });

  it("cancel() ends it at once and tells the worker link", async () => {
    let cancelled = 0;
    const handle = new RequestHandle(() => cancelled++, 3);
    handle.push(text(0, "a"));
    handle.cancel();
    handle.cancel();
    expect(cancelled).toBe(1);
    expect(handle.finished).toBe(true);
  });
});
