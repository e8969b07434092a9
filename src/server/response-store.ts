/**
 * Stored /v1/responses (store: true), in memory and bounded by count (`responses.maxStored`) and
 * by size (`responses.maxStoredMB`): the least recently used response is dropped first. Each
 * entry keeps the conversation that led to the response, so previous_response_id can continue
 * it without the client resending it.
 */
import type { InputItem } from "../openai/responses-schema.js";
import type { ResponseObject } from "../openai/responses.js";

export interface StoredResponse {
  response: ResponseObject;
  /** The input items of this response and of every response before it (instructions excluded). */
  conversation: InputItem[];
}

export class ResponseStore {
  /** Map order is use order: the first key is the least recently used. */
  private readonly entries = new Map<string, { entry: StoredResponse; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get(id: string): StoredResponse | undefined {
    const held = this.entries.get(id);
    if (!held) return undefined;
    this.entries.delete(id);
    this.entries.set(id, held);
    return held.entry;
  }

  /**
   * Keeps `entry`, dropping the least recently used ones past either bound. Its size counts every
   * item of its conversation, also those earlier entries share, so the real total stays below the
   * bound; an entry larger than the whole budget is not kept.
   */
  put(entry: StoredResponse): void {
    const bytes = Buffer.byteLength(JSON.stringify(entry));
    if (this.maxEntries === 0 || bytes > this.maxBytes) return;
    this.delete(entry.response.id);
    this.entries.set(entry.response.id, { entry, bytes });
    this.bytes += bytes;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.delete(oldest);
    }
  }

  delete(id: string): boolean {
    const held = this.entries.get(id);
    if (!held) return false;
    this.bytes -= held.bytes;
    return this.entries.delete(id);
  }
}
