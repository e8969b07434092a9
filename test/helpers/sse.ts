/** Raw SSE reading over plain HTTP, to check the exact wire format without any SDK in between. */
export interface RawSse {
  status: number;
  contentType: string | null;
  /** The data payloads in order, "[DONE]" included. */
  data: string[];
  raw: string;
}

export async function postSse(url: string, body: unknown): Promise<RawSse> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const raw = await res.text();
  const data = raw
    .split("\n\n")
    .map((block) => block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"))
    .filter((d) => d.length > 0);
  return { status: res.status, contentType: res.headers.get("content-type"), data, raw };
}

/** One server-sent event with a name (Anthropic's streams name every event). */
export interface NamedEvent {
  event: string;
  data: { type: string } & Record<string, unknown>;
}

/** Posts and reads the named events of the answer, comments (heartbeats) left out. */
export async function postNamedEvents(url: string, body: unknown, headers: Record<string, string> = {}): Promise<NamedEvent[]> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const raw = await res.text();
  return raw
    .split("\n\n")
    .map((block) => block.split("\n"))
    .filter((lines) => lines.some((l) => l.startsWith("event: ")))
    .map((lines) => ({
      event: lines.find((l) => l.startsWith("event: "))!.slice(7),
      data: JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")),
    }));
}
