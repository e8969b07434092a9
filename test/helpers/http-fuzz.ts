/**
 * Property-based fuzzing of the HTTP API, shared by test/e2e/fuzz.test.ts (a bounded number of
 * cases) and scripts/fuzz.ts (as many as asked). Requests are valid chat bodies mutated with
 * hostile values, random JSON, truncated JSON, invalid UTF-8 and odd content types, methods
 * and paths. Each response must keep the invariants in `checkResponse`.
 */
import fc from "fast-check";

/**
 * Settings of the server under fuzz: short generations whatever a request asks (a mutation can
 * delete max_tokens), so thousands of cases stay fast and no deadline is reached.
 */
export const FUZZ_SERVER_SETTINGS = {
  "model.contextSize": 512,
  "server.bodyLimitBytes": 262_144,
  "generation.defaultMaxTokens": 16,
  "limits.maxCompletionTokens": 16,
};

interface FuzzRequest {
  method: string;
  path: string;
  contentType: string | null;
  body: string | Uint8Array | null;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function nest(depth: number, leaf: unknown, asArray: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { a: v };
  return v;
}

/** Values that break naive code: wrong types, extremes, odd strings, deep documents. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, -(2 ** 63), 5e-324, -0, 4294967297, 0.5, -1, 0, 1e6),
  fc.constantFrom("\ud800", "\udfff\ud800x", "\u0000", "<|im_end|>", "<think>", "</think>", "<tool_call>", "{{ raise_exception('boom') }}", "{% for i in range(99999999) %}x{% endfor %}", "\u202e\u200b", "NaN", ""),
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.integer({ min: 1_000, max: 300_000 }).map((n) => "a".repeat(n)),
  // Deeper documents come as raw text (rawBody): JSON.stringify itself would overflow here.
  fc.tuple(fc.integer({ min: 8, max: 500 }), fc.boolean()).map(([d, asArray]) => nest(d, 1, asArray)),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 40 }),
  fc.constant(null),
);

const FIELDS = [
  "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
  "n", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "chat_template_kwargs",
  "enable_thinking", "reasoning_effort", "reasoning", "presence_penalty", "frequency_penalty", "repeat_penalty", "user",
  "thinking_budget", "logprobs", "unknown_field",
] as const;

const MESSAGE_FIELDS = ["role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content"] as const;

/** A request the server should serve (short, so fuzzing stays fast). */
function validChatBody(model: string) {
  return fc.record(
    {
      model: fc.constant(model),
      messages: fc.array(
        fc.record({ role: fc.constantFrom("system", "user", "assistant", "developer"), content: fc.string({ maxLength: 40 }) }),
        { minLength: 1, maxLength: 3 },
      ).map((ms) => [...ms, { role: "user", content: "hi" }]),
      max_tokens: fc.integer({ min: 1, max: 8 }),
      stream: fc.boolean(),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      top_p: fc.double({ min: 0, max: 1, noNaN: true }),
      seed: fc.integer(),
      stop: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }),
      n: fc.integer({ min: 1, max: 2 }),
      enable_thinking: fc.boolean(),
    },
    { requiredKeys: ["model", "messages", "max_tokens"] },
  );
}

/** A valid body with fields replaced by hostile values, deleted, or its first message broken. */
function mutatedChatBody(model: string): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      validChatBody(model),
      fc.array(fc.tuple(fc.constantFrom(...FIELDS), hostileValue), { maxLength: 3 }),
      fc.array(fc.constantFrom(...FIELDS), { maxLength: 2 }),
      fc.option(fc.tuple(fc.constantFrom(...MESSAGE_FIELDS), hostileValue), { nil: undefined }),
    )
    .map(([valid, sets, deletions, messageMutation]) => {
      const body: Record<string, unknown> = { ...valid };
      for (const [k, v] of sets) body[k] = v;
      for (const k of deletions) delete body[k];
      if (messageMutation && Array.isArray(body["messages"]) && typeof body["messages"][0] === "object" && body["messages"][0] !== null) {
        body["messages"] = [{ ...(body["messages"][0] as object), [messageMutation[0]]: messageMutation[1] }, ...body["messages"].slice(1)];
      }
      return body;
    });
}

const COMPLETION_FIELDS = [
  "model", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "n", "stream", "stream_options", "echo",
  "logprobs", "suffix", "best_of", "unknown_field",
] as const;

/** A /v1/completions request the server should serve: every prompt form, short. */
function validCompletionBody(model: string) {
  const ids = fc.array(fc.integer({ min: 0, max: 150_000 }), { minLength: 1, maxLength: 8 });
  return fc.record(
    {
      model: fc.constant(model),
      prompt: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 2 }), ids, fc.array(ids, { minLength: 1, maxLength: 2 })),
      max_tokens: fc.integer({ min: 1, max: 8 }),
      stream: fc.boolean(),
      temperature: fc.double({ min: 0, max: 2, noNaN: true }),
      seed: fc.integer(),
      stop: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }),
      n: fc.integer({ min: 1, max: 2 }),
      echo: fc.boolean(),
      logprobs: fc.integer({ min: 0, max: 5 }),
    },
    { requiredKeys: ["model", "prompt", "max_tokens"] },
  );
}

function mutatedCompletionBody(model: string): fc.Arbitrary<unknown> {
  return fc
    .tuple(validCompletionBody(model), fc.array(fc.tuple(fc.constantFrom(...COMPLETION_FIELDS), hostileValue), { maxLength: 3 }), fc.array(fc.constantFrom(...COMPLETION_FIELDS), { maxLength: 2 }))
    .map(([valid, sets, deletions]) => {
      const body: Record<string, unknown> = { ...valid };
      for (const [k, v] of sets) body[k] = v;
      for (const k of deletions) delete body[k];
      return body;
    });
}

const CONTENT_TYPES = [
  "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16", "text/plain",
  "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz", "application/octet-stream", "*/*", ";;;", "",
];

/** Bodies that are not JSON, or not quite: bytes, invalid UTF-8 inside a JSON string, truncated JSON, random JSON. */
function rawBody(model: string): fc.Arbitrary<string | Uint8Array> {
  const prefix = utf8(`{"model":${JSON.stringify(model)},"max_tokens":2,"messages":[{"role":"user","content":"`);
  const suffix = utf8(`"}]}`);
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => new Uint8Array([...prefix, ...bytes, ...suffix])),
    fc.constantFrom(new Uint8Array([...prefix, 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, ...suffix])),
    fc.json({ maxDepth: 4 }),
    fc.string({ maxLength: 200 }),
    fc.tuple(fc.integer({ min: 100, max: 200_000 }), fc.constantFrom("[", "{\"a\":")).map(([depth, open]) => {
      const close = open === "[" ? "]" : "}";
      return `{"model":${JSON.stringify(model)},"messages":${open.repeat(depth)}1${close.repeat(depth)}}`;
    }),
    fc.tuple(validChatBody(model), fc.nat()).map(([b, cut]) => {
      const text = JSON.stringify(b);
      return text.slice(0, cut % text.length);
    }),
  );
}

function fuzzRequests(model: string): fc.Arbitrary<FuzzRequest> {
  const chat = "/v1/chat/completions";
  const jsonBody = (arb: fc.Arbitrary<unknown>) => arb.map((b) => JSON.stringify(b) ?? "null");
  return fc.oneof(
    { weight: 5, arbitrary: fc.record({ method: fc.constant("POST"), path: fc.constant(chat), contentType: fc.constant<string | null>("application/json"), body: jsonBody(mutatedChatBody(model)) }) },
    { weight: 2, arbitrary: fc.record({ method: fc.constant("POST"), path: fc.constant(chat), contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: null }), body: rawBody(model) }) },
    { weight: 1, arbitrary: fc.record({ method: fc.constant("POST"), path: fc.constant(chat), contentType: fc.constantFrom(...CONTENT_TYPES), body: jsonBody(validChatBody(model)) }) },
    { weight: 2, arbitrary: fc.record({ method: fc.constant("POST"), path: fc.constant("/v1/completions"), contentType: fc.constant<string | null>("application/json"), body: jsonBody(mutatedCompletionBody(model)) }) },
    {
      weight: 1,
      arbitrary: fc.record({
        method: fc.constantFrom("GET", "HEAD", "DELETE", "PUT", "PATCH", "POST"),
        path: fc.constantFrom("/v1/models", `/v1/models/${encodeURIComponent(model)}`, "/v1/models/%00", "/health", "/v1/engine?fail_on_no_slot=1", "/metrics", "/v1/chat/completions?x=1", "/v1/completions", "/%2e%2e/etc/passwd", "/v1/chat/completions/extra"),
        contentType: fc.constant<string | null>("application/json"),
        body: fc.option(fc.json({ maxDepth: 2 }), { nil: null }),
      }),
    },
  );
}

/** The object a generation route answers with. */
const GENERATION_OBJECTS = new Map([
  ["/v1/chat/completions", "chat.completion"],
  ["/v1/completions", "text_completion"],
]);

interface FuzzOutcome {
  status: number;
}

/** Sends one request and checks the invariants; throws with the reason when one breaks. */
async function sendAndCheck(baseUrl: string, req: FuzzRequest, timeoutMs = 30_000): Promise<FuzzOutcome> {
  const bodyAllowed = req.method !== "GET" && req.method !== "HEAD";
  const headers: Record<string, string> = {};
  if (req.contentType !== null) headers["content-type"] = req.contentType;
  let res: Response;
  try {
    res = await fetch(`${baseUrl}${req.path}`, {
      method: req.method,
      headers,
      body: bodyAllowed && req.body !== null ? req.body : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new Error(`no response (crash or hang): ${(err as Error).message}`);
  }
  const text = await res.text();
  if (res.status >= 500) throw new Error(`server error ${res.status}: ${text.slice(0, 300)}`);
  const type = res.headers.get("content-type") ?? "";
  if (res.status >= 400 && req.method !== "HEAD") checkErrorBody(res.status, text);
  else if (res.status === 200 && req.method === "POST" && GENERATION_OBJECTS.has(req.path.split("?")[0]!)) {
    const object = GENERATION_OBJECTS.get(req.path.split("?")[0]!);
    if (type.startsWith("text/event-stream")) checkSse(text);
    else if (JSON.parse(text).object !== object) throw new Error(`200 without a ${object}: ${text.slice(0, 300)}`);
  }
  return { status: res.status };
}

function checkErrorBody(status: number, text: string): void {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  if (!isErrorObject(body)) throw new Error(`${status} without an OpenAI error object: ${text.slice(0, 300)}`);
}

function isErrorObject(body: unknown): boolean {
  if (typeof body !== "object" || body === null || Object.keys(body).join() !== "error") return false;
  const e = (body as { error: Record<string, unknown> }).error;
  return (
    typeof e === "object" && e !== null &&
    Object.keys(e).sort().join() === "code,message,param,type" &&
    typeof e["message"] === "string" && typeof e["type"] === "string" &&
    (e["param"] === null || typeof e["param"] === "string") &&
    (e["code"] === null || typeof e["code"] === "string")
  );
}

/** Nothing fails on purpose while fuzzing, so an error event mid-stream is a hidden server error. */
function checkSse(text: string): void {
  const data = text.split("\n\n").map((b) => b.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")).filter((d) => d);
  if (data.at(-1) !== "[DONE]") throw new Error(`stream did not end with [DONE]: ${text.slice(-300)}`);
  for (const d of data.slice(0, -1)) JSON.parse(d);
}

/** Counts responses by status, for the fuzz script's report. */
type StatusCounts = Map<number, number>;

export function httpFuzzProperty(baseUrl: string, model: string, counts: StatusCounts = new Map()) {
  return fc.asyncProperty(fuzzRequests(model), async (req) => {
    const { status } = await sendAndCheck(baseUrl, req);
    counts.set(status, (counts.get(status) ?? 0) + 1);
  });
}

/** One client plan: abort before the answer starts (after `afterMs`), or after `afterEvents` SSE events. */
const disconnectPlan = fc.record({
  stream: fc.boolean(),
  maxTokens: fc.integer({ min: 20, max: 400 }),
  afterMs: fc.integer({ min: 0, max: 300 }),
  afterEvents: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
});

/**
 * Clients that hang up at random points, several at once. Afterwards `settled` must show
 * every sequence idle and nothing queued (the caller checks it after each run).
 */
export function disconnectProperty(baseUrl: string, model: string, settled: () => Promise<void>) {
  return fc.asyncProperty(fc.array(disconnectPlan, { minLength: 1, maxLength: 4 }), async (plans) => {
    await Promise.all(
      plans.map(async (plan) => {
        const controller = new AbortController();
        const body = JSON.stringify({ model, messages: [{ role: "user", content: "count" }], stream: plan.stream, max_tokens: plan.maxTokens });
        const timer = plan.afterEvents === undefined || !plan.stream ? setTimeout(() => controller.abort(), plan.afterMs) : undefined;
        try {
          const res = await fetch(`${baseUrl}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: controller.signal });
          if (res.status >= 500) throw new Error(`server error ${res.status}`);
          const reader = res.body!.getReader();
          let events = 0;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            events += new TextDecoder().decode(value).split("\n\n").length - 1;
            if (plan.afterEvents !== undefined && events >= plan.afterEvents) {
              controller.abort();
              break;
            }
          }
        } catch (err) {
          if ((err as Error).name !== "AbortError") throw err;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    await settled();
  });
}
