/**
 * Server-sent events off a fetch body, for the tools that time or classify streamed answers
 * (bench, soak, bench:tokens). Chat completion chunks are typed as far as the tools read them.
 */

export interface SseEvent {
  /** The event's data lines joined by "\n" ("[DONE]" included). */
  data: string;
  /** performance.now() when the bytes that completed the event arrived. */
  at: number;
}

/**
 * Yields each event that carries data, as it completes; comments (heartbeats), `event:` names and
 * ids are skipped. At the end of the body, complete `data:` lines still waiting for their blank line are one last event.
 */
export async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  for await (const bytes of body) {
    const at = performance.now();
    buffer += decoder.decode(bytes, { stream: true });
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      else if (line === "" && data.length > 0) {
        yield { data: data.join("\n"), at };
        data = [];
      }
    }
  }
  if (data.length > 0) yield { data: data.join("\n"), at: performance.now() };
}

/** A chat.completion.chunk, or the error event a server sends mid-stream. */
export interface ChatChunk {
  choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null }; finish_reason?: string | null }>;
  usage?: { completion_tokens?: number; prompt_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
  error?: { message?: string; code?: string | null };
}

/** The text a chunk's first choice adds, answer and reasoning alike. */
export function deltaText(chunk: ChatChunk): string {
  const delta = chunk.choices?.[0]?.delta;
  return (delta?.content ?? "") + (delta?.reasoning_content ?? "");
}
