/**
 * Stored /v1/responses (store: true), in memory and bounded (`responses.maxStored`): the least
 * recently used response is dropped first. Each entry keeps the conversation that led to the
 * response, so previous_response_id can continue it without the client resending it.
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
  private readonly entries = new Map<string, StoredResponse>();

  constructor(private readonly capacity: number) {}

  get(id: string): StoredResponse | undefined {
    const entry = this.entries.get(id);
    if (entry) this.touch(id, entry);
    return entry;
  }

  put(entry: StoredResponse): void {
    if (this.capacity === 0) return;
    this.touch(entry.response.id, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(oldest);
    }
  }

  delete(id: string): boolean {
    return this.entries.delete(id);
  }

  private touch(id: string, entry: StoredResponse): void {
    this.entries.delete(id);
    this.entries.set(id, entry);
  }
}
