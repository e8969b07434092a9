/**
 * The main process's handle on one request running in a model worker: its events, as an async
 * iterable, and cancel(). The worker link makes one per request it sends; a ServedModel hands
 * the route one that outlives a worker swap.
 */
import type { GenerationEvent } from "../engine/types.js";

export class RequestHandle implements AsyncIterable<GenerationEvent> {
  private readonly buffer: GenerationEvent[] = [];
  private wake: (() => void) | null = null;
  private ended = false;

  constructor(private readonly onCancel: () => void) {}

  /** Called by the worker link for each event; `done` and `failed` end the stream. */
  push(event: GenerationEvent): void {
    if (this.ended) return;
    this.buffer.push(event);
    if (event.type === "done" || event.type === "failed") this.ended = true;
    this.wake?.();
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
