// The page's only way to the server: every call carries the stored API key, and a 401 asks the
// user for one (once) and retries.
const KEY = "edgellm.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
  }
}

let askForKey = async () => {
  throw new Error("no key prompt installed");
};
/** `prompt(message)` resolves with the key the user typed. */
export function onKeyNeeded(prompt) {
  askForKey = prompt;
}

async function send(path, { method = "GET", body, signal } = {}) {
  for (;;) {
    const key = localStorage.getItem(KEY);
    const headers = { ...(body !== undefined && { "content-type": "application/json" }), ...(key && { authorization: `Bearer ${key}` }) };
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    if (res.status !== 401) return res;
    const err = new ApiError(401, await res.json().catch(() => null));
    localStorage.setItem(KEY, await askForKey(key ? err.message : null));
  }
}

async function json(res) {
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const api = {
  get: (path) => send(path).then(json),
  post: (path, body) => send(path, { method: "POST", body }).then(json),
  delete: (path) => send(path, { method: "DELETE" }).then(json),
};

/**
 * Streams a chat completion: yields each parsed chunk. Errors before the stream are thrown as
 * ApiError; an error object inside the stream is thrown too.
 */
export async function* streamChat(body, signal) {
  const res = await send("/v1/chat/completions", { method: "POST", body: { ...body, stream: true, stream_options: { include_usage: true } }, signal });
  if (!res.ok) await json(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data === "") continue;
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ApiError(500, chunk);
      yield chunk;
    }
  }
}
