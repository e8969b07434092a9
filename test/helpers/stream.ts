/** Reads an SSE response event by event as it arrives, so tests can act mid-stream. */
export interface LiveStream {
  status: number;
  headers: Headers;
  /** Next `data:` payload; undefined once the server closed the stream. */
  next(): Promise<string | undefined>;
  /** Reads to the end and returns every remaining payload. */
  rest(): Promise<string[]>;
  abort(): void;
}

export async function openStream(url: string, body: unknown, headers: Record<string, string> = {}): Promise<LiveStream> {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: controller.signal,
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const pending: string[] = [];
  let closed = false;
  const next = async (): Promise<string | undefined> => {
    while (pending.length === 0 && !closed) {
      const { value, done } = await reader.read();
      if (done) {
        closed = true;
        break;
      }
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (data) pending.push(data);
      }
    }
    return pending.shift();
  };
  const rest = async () => {
    const out: string[] = [];
    for (let d = await next(); d !== undefined; d = await next()) out.push(d);
    return out;
  };
  return { status: res.status, headers: res.headers, next, rest, abort: () => controller.abort() };
}

/** Reads until the first content delta, so generation is known to be under way. */
export async function untilContent(stream: LiveStream): Promise<void> {
  for (let d = await stream.next(); d !== undefined; d = await stream.next()) {
    if (d !== "[DONE]" && JSON.parse(d).choices?.[0]?.delta?.content) return;
  }
  throw new Error("stream ended before any content");
}

export async function waitFor<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
