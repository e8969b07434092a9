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
