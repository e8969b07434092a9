/** Evidence of what a model was shown, and raw Responses SSE, for the /v1/responses tests. */
import type { TestServer } from "./server.js";

async function post(server: TestServer, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Prompt tokens of a chat request (its `messages`, `tools`, thinking switches) rendered by the server's own template. */
export async function chatPromptTokens(server: TestServer, chat: Record<string, unknown>): Promise<number> {
  const { prompt } = await post(server, "/apply-template", chat);
  const { tokens } = await post(server, "/tokenize", { content: prompt });
  return (tokens as number[]).length;
}

export interface SseEvent {
  event: string | null;
  data: Record<string, unknown>;
}

/** POSTs a streaming request and parses every `event:` / `data:` block as sent. */
export async function postResponsesSse(server: TestServer, body: unknown): Promise<{ status: number; contentType: string | null; events: SseEvent[]; raw: string }> {
  const res = await fetch(`${server.baseURL}/responses`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const raw = await res.text();
  const events = raw
    .split("\n\n")
    .map((block) => block.split("\n"))
    .filter((lines) => lines.some((l) => l.startsWith("data: ")))
    .map((lines) => ({
      event: lines.find((l) => l.startsWith("event: "))?.slice(7) ?? null,
      data: JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")) as Record<string, unknown>,
    }));
  return { status: res.status, contentType: res.headers.get("content-type"), events, raw };
}

/** Event types with each run of repeated deltas folded into one, to compare sequences exactly. */
export function eventOutline(types: string[]): string[] {
  return types.filter((t, i) => !(t.endsWith(".delta") && types[i - 1] === t));
}
