/**
 * The main process's handle on one request running in a model worker: its events (those of all
 * its choices, each text and done event with its choice's index), as an async iterable, and
 * cancel(). The worker link makes one per request it sends; a ServedModel hands the route one
 * that outlives a worker swap.
 */
import type { GenerationEvent } from "../engine/types.js";

export class RequestHandle implements AsyncIterable<GenerationEvent> {
  private readonly buffer: GenerationEvent[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  /** Choices not done yet. */
  private running: number;

  /** `choices`: the request's `n`; the stream ends once each of them is done. */
  constructor(
    private readonly onCancel: () => void,
    choices = 1,
  ) {
    this.running = choices;
  }

  /** Called by the worker link for each event; the last choice's `done`, or `failed`, ends the stream. */
  push(event: GenerationEvent): void {
    if (this.ended) return;
    this.buffer.push(event);
    if ((event.type === "done" && --this.running === 0) || event.type === "failed") this.ended = true;
    this.wake?.();
  }

  /** No more events will come: every choice is done, the request failed, or it was cancelled. */
  get finished(): boolean {
    return this.ended;
  }

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.onCancel();
    this.wake?.();
  }

  /** Next event, or undefined when the stream ended. */
  async next(): Promise<GenerationEvent | undefined> {
    while (this.buffer.length === 0) {
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return this.buffer.shift();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GenerationEvent> {
    for (let ev = await this.next(); ev; ev = await this.next()) yield ev;
  }
}
