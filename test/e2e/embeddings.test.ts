/**
 * POST /v1/embeddings end to end: the `openai` SDK and LangChain's OpenAIEmbeddings against the
 * real server and worker, on synthesized embedding models. The expected vectors of each pooling
 * are computed independently, through node-llama-cpp on the chat twin of the same weights.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import { OpenAIEmbeddings } from "@langchain/openai";
import { LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { embeddingModel, tinyModel } from "../helpers/models.js";
import { engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/stream.js";
import { loadLlamaBackend } from "../../src/engine/backend.js";
import { scrape, delta } from "../helpers/prometheus.js";
import { QWEN3_PRESETS } from "../../src/models/synthetic/index.js";

const N_EMBD = QWEN3_PRESETS.tiny.embeddingLength;
const TEXTS = ["The river flows north.", "A small edge gateway.", "Embeddings are unit vectors."];

const norm = (v: readonly number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const unit = (v: readonly number[]) => v.map((x) => x / norm(v));
const maxDiff = (a: readonly number[], b: readonly number[]) => {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
};

function decodeFloat32LE(base64: string): number[] {
  const bytes = Buffer.from(base64, "base64");
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

async function post(server: TestServer, body: unknown) {
  const res = await fetch(`${server.baseURL}/embeddings`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}

async function tokenize(server: TestServer, content: string): Promise<number[]> {
  const res = await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ content, parse_special: false }) });
  return ((await res.json()) as { tokens: number[] }).tokens;
}

/**
 * The final hidden state (after the output norm) at every position of `tokens`, read through
 * node-llama-cpp's own embedding API on the chat twin, which declares no pooling: llama.cpp then
 * returns the last position's state unpooled, and a causal model's state at position i is the
 * last state of the prefix that ends there.
 */
async function hiddenStates(twin: LlamaModel, tokens: number[]): Promise<number[][]> {
  const context = await twin.createEmbeddingContext({ contextSize: 256, batchSize: 256, threads: 1 });
  try {
    const states: number[][] = [];
    for (let end = 1; end <= tokens.length; end++) states.push([...(await context.getEmbeddingFor(tokens.slice(0, end) as Token[])).vector]);
    return states;
  } finally {
    await context.dispose();
  }
}

const mean = (rows: number[][]) => rows[0]!.map((_, j) => rows.reduce((s, r) => s + r[j]!, 0) / rows.length);

describe("POST /v1/embeddings on a last-pooling model (Qwen3-Embedding's pooling)", () => {
  let server: TestServer;
  let client: OpenAI;
  const alone = new Map<string, number[]>();

  beforeAll(async () => {
    server = await startTestServer(await embeddingModel("last"));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
    for (const text of TEXTS) {
      const res = await client.embeddings.create({ model: server.modelId, input: text, encoding_format: "float" });
      alone.set(text, res.data[0]!.embedding);
    }
  });
  afterAll(() => server?.stop());

  it("float: one unit vector of the model's n_embd, usage counts the tokens", async () => {
    const text = TEXTS[0]!;
    const res = await client.embeddings.create({ model: server.modelId, input: text, encoding_format: "float" });
    expect(res.object).toBe("list");
    expect(res.model).toBe(server.modelId);
    expect(res.data).toHaveLength(1);
    expect(res.data[0]).toMatchObject({ object: "embedding", index: 0 });
    expect(res.data[0]!.embedding).toHaveLength(N_EMBD);
    expect(norm(res.data[0]!.embedding)).toBeCloseTo(1, 5);
    const tokens = await tokenize(server, text);
    expect(res.usage).toEqual({ prompt_tokens: tokens.length, total_tokens: tokens.length });
  });

  it("base64 is little-endian float32 of the float vector, explicitly and as the SDK decodes it by default", async () => {
    const text = TEXTS[1]!;
    const explicit = await client.embeddings.create({ model: server.modelId, input: text, encoding_format: "base64" });
    const encoded = explicit.data[0]!.embedding as unknown as string;
    expect(typeof encoded).toBe("string");
    expect(maxDiff(decodeFloat32LE(encoded), alone.get(text)!)).toBeLessThan(1e-6);
    const byDefault = await client.embeddings.create({ model: server.modelId, input: text });
    expect(maxDiff(Array.from(byDefault.data[0]!.embedding), alone.get(text)!)).toBeLessThan(1e-6);
  });

  it("an array of strings: one vector per input, in order, each the vector it gets alone", async () => {
    const res = await client.embeddings.create({ model: server.modelId, input: [...TEXTS].reverse(), encoding_format: "float" });
    expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
    [...TEXTS].reverse().forEach((text, i) => expect(maxDiff(res.data[i]!.embedding, alone.get(text)!)).toBeLessThan(1e-4));
    const tokens = await Promise.all(TEXTS.map((t) => tokenize(server, t)));
    expect(res.usage.prompt_tokens).toBe(tokens.reduce((s, t) => s + t.length, 0));
  });

  it("counts the prompt tokens in /metrics", async () => {
    const before = await scrape(server.url);
    const res = await client.embeddings.create({ model: server.modelId, input: TEXTS, encoding_format: "float" });
    const after = await scrape(server.url);
    expect(delta(before, after, `edgellm_prompt_tokens_total{model="${server.modelId}"}`)).toBe(res.usage.prompt_tokens);
  });

  it("different texts give different vectors", () => {
    const [a, b, c] = TEXTS.map((t) => alone.get(t)!);
    expect(maxDiff(a!, b!)).toBeGreaterThan(0.05);
    expect(maxDiff(b!, c!)).toBeGreaterThan(0.05);
  });

  it("token ids, alone or as an array of token arrays, give the vector of the text they spell", async () => {
    const tokens = await Promise.all(TEXTS.map((t) => tokenize(server, t)));
    const single = await client.embeddings.create({ model: server.modelId, input: tokens[0]!, encoding_format: "float" });
    expect(maxDiff(single.data[0]!.embedding, alone.get(TEXTS[0]!)!)).toBeLessThan(1e-6);
    expect(single.usage.prompt_tokens).toBe(tokens[0]!.length);
    const many = await client.embeddings.create({ model: server.modelId, input: tokens, encoding_format: "float" });
    TEXTS.forEach((text, i) => expect(maxDiff(many.data[i]!.embedding, alone.get(text)!)).toBeLessThan(1e-4));
  });

  it("concurrent requests each get the vectors they get alone", async () => {
    const results = await Promise.all([
      client.embeddings.create({ model: server.modelId, input: TEXTS, encoding_format: "float" }),
      ...TEXTS.map((text) => client.embeddings.create({ model: server.modelId, input: text, encoding_format: "float" })),
    ]);
    TEXTS.forEach((text, i) => {
      expect(maxDiff(results[0]!.data[i]!.embedding, alone.get(text)!)).toBeLessThan(1e-4);
      expect(maxDiff(results[i + 1]!.data[0]!.embedding, alone.get(text)!)).toBeLessThan(1e-4);
    });
  });

  it("the vector is the normalized last-token hidden state, computed independently on the chat twin", async () => {
    const { llama } = await loadLlamaBackend("auto", { logLevel: LlamaLogLevel.error, logger: () => {} });
    const twin = await llama.loadModel({ modelPath: await tinyModel() });
    try {
      const text = TEXTS[2]!;
      const states = await hiddenStates(twin, await tokenize(server, text));
      const served = alone.get(text)!;
      expect(maxDiff(served, unit(states.at(-1)!))).toBeLessThan(1e-3);
      // The check can tell poolings apart: mean pooling would give another vector.
      expect(maxDiff(served, unit(mean(states)))).toBeGreaterThan(0.05);
    } finally {
      await twin.dispose();
      await llama.dispose();
    }
  });

  it("an input longer than model.batchSize (evaluated in pieces) still gets its last token's state", async () => {
    const text = Array.from({ length: 220 }, (_, i) => `w${i}`).join(" ");
    const tokens = await tokenize(server, text);
    expect(tokens.length).toBeGreaterThan(600); // the test server's batchSize is 512, its contextSize 1024
    expect(tokens.length).toBeLessThan(1023);
    const res = await client.embeddings.create({ model: server.modelId, input: text, encoding_format: "float" });
    const { llama } = await loadLlamaBackend("auto", { logLevel: LlamaLogLevel.error, logger: () => {} });
    const twin = await llama.loadModel({ modelPath: await tinyModel() });
    try {
      const context = await twin.createEmbeddingContext({ contextSize: 1024, batchSize: 1024, threads: 1 });
      const last = (await context.getEmbeddingFor(tokens as Token[])).vector;
      await context.dispose();
      expect(maxDiff(res.data[0]!.embedding, unit(last))).toBeLessThan(1e-3);
    } finally {
      await twin.dispose();
      await llama.dispose();
    }
  });

  it("LangChain OpenAIEmbeddings: embedQuery and embedDocuments give the same vectors", async () => {
    const embeddings = new OpenAIEmbeddings({ model: server.modelId, apiKey: "unused", configuration: { baseURL: server.baseURL }, maxRetries: 0 });
    const query = await embeddings.embedQuery(TEXTS[0]!);
    expect(maxDiff(query, alone.get(TEXTS[0]!)!)).toBeLessThan(1e-6);
    const docs = await embeddings.embedDocuments(TEXTS);
    expect(docs).toHaveLength(TEXTS.length);
    TEXTS.forEach((text, i) => expect(maxDiff(docs[i]!, alone.get(text)!)).toBeLessThan(1e-4));
  });

  it("serves embeddings only: chat answers 400 model_not_generative, and the engine holds no chat sequences", async () => {
    await expect(client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }] })).rejects.toMatchObject({
      status: 400,
      code: "model_not_generative",
      param: "model",
    });
    const engine = (await (await fetch(`${server.url}/v1/engine`)).json()) as { models: Array<Record<string, unknown>> };
    expect(engine.models[0]).toMatchObject({ pooling: "last", slots: [], context_size: 1024 });
  });

  it("dimensions: 400 naming the parameter, since the model has no Matryoshka truncation", async () => {
    const { status, body } = await post(server, { model: server.modelId, input: "hi", dimensions: 32 });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: "invalid_request_error", param: "dimensions", code: "unsupported_parameter" });
    expect(body.error.message).toMatch(/Matryoshka/);
    await expect(client.embeddings.create({ model: server.modelId, input: "hi", dimensions: 32 })).rejects.toMatchObject({ status: 400, param: "dimensions" });
  });

  it("empty input, an empty string, an empty token array: 400 empty_input", async () => {
    for (const input of ["", [], ["fine", ""], [[1, 2], []]]) {
      const { status, body } = await post(server, { model: server.modelId, input });
      expect(status, JSON.stringify(input)).toBe(400);
      expect(body.error).toMatchObject({ type: "invalid_request_error", param: "input", code: "empty_input" });
    }
  });

  it("an input longer than the context: 400 context_length_exceeded; a token id past the vocabulary: 400", async () => {
    const long = await post(server, { model: server.modelId, input: ["short", "word ".repeat(1100)] });
    expect(long.status).toBe(400);
    expect(long.body.error).toMatchObject({ param: "input", code: "context_length_exceeded" });
    expect(long.body.error.message).toMatch(/input\[1\] has \d+ tokens/);
    const bad = await post(server, { model: server.modelId, input: [1, 2, 10_000_000] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ param: "input", code: "invalid_token" });
    // The server still answers afterwards.
    expect((await post(server, { model: server.modelId, input: "hi" })).status).toBe(200);
  });

  it("malformed bodies are 400 OpenAI errors, never a 500", async () => {
    const bodies = [
      {},
      { input: null },
      { input: 42 },
      { input: { text: "a" } },
      { input: [["a"]] },
      { input: [1.5, 2] },
      { input: [-1] },
      { input: [[1], "a"] },
      { input: Array.from({ length: 2049 }, () => "a") },
      { input: [2 ** 40] },
      { input: "a", encoding_format: 1 },
      { input: "a", dimensions: "64" },
      { input: "a", model: 7 },
      { input: "a", user: {} },
    ];
    for (const body of bodies) {
      const res = await post(server, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error).toMatchObject({ type: "invalid_request_error", message: expect.any(String), code: expect.any(String) });
    }
    expect((await post(server, { input: "still fine" })).status).toBe(200);
  });

  it("wrong types are 400s naming 'input' or 'encoding_format'", async () => {
    const mixed = await post(server, { model: server.modelId, input: ["a", 1] });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.param).toBe("input");
    const format = await post(server, { model: server.modelId, input: "a", encoding_format: "int8" });
    expect(format.status).toBe(400);
    expect(format.body.error.param).toBe("encoding_format");
  });
});

describe.each(["mean", "cls"] as const)("%s pooling", (pooling) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await embeddingModel(pooling));
  });
  afterAll(() => server?.stop());

  it("matches the pooling of the hidden states computed independently on the chat twin", async () => {
    const text = "Pooling picks which states count.";
    const { status, body } = await post(server, { input: text });
    expect(status).toBe(200);
    const served = body.data[0].embedding as number[];
    expect(norm(served)).toBeCloseTo(1, 5);
    const { llama } = await loadLlamaBackend("auto", { logLevel: LlamaLogLevel.error, logger: () => {} });
    const twin = await llama.loadModel({ modelPath: await tinyModel() });
    try {
      const states = await hiddenStates(twin, await tokenize(server, text));
      const expected = pooling === "mean" ? mean(states) : states[0]!;
      expect(maxDiff(served, unit(expected))).toBeLessThan(1e-3);
      expect(maxDiff(served, unit(states.at(-1)!))).toBeGreaterThan(0.05);
    } finally {
      await twin.dispose();
      await llama.dispose();
    }
  });
});

describe("limits.maxConcurrentRequestsPerClient", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await embeddingModel("last"), { "limits.maxConcurrentRequestsPerClient": 1 });
  });
  afterAll(() => server?.stop());

  it("bounds embedding requests in flight like generations, and /v1/engine counts them as running", async () => {
    const many = Array.from({ length: 1000 }, (_, i) => `document number ${i}`);
    const first = post(server, { input: many });
    await waitFor(() => engineModel(server), (m) => m.running === 1, 30_000, 10);
    const second = await post(server, { input: "one more" });
    expect(second.status).toBe(429);
    expect(second.body.error.code).toBe("too_many_concurrent_requests");
    const done = await first;
    expect(done.status).toBe(200);
    expect(done.body.data).toHaveLength(1000);
    expect((await engineModel(server)).running).toBe(0);
    expect((await post(server, { input: "after" })).status).toBe(200);
  });

  it("a client that hangs up mid-request is counted as a disconnect, and the model serves the next request", async () => {
    const before = await scrape(server.url);
    const aborter = new AbortController();
    const many = Array.from({ length: 1000 }, (_, i) => `document number ${i}`);
    const request = fetch(`${server.baseURL}/embeddings`, { method: "POST", body: JSON.stringify({ input: many }), signal: aborter.signal });
    await waitFor(() => engineModel(server), (m) => m.running === 1, 30_000, 10);
    aborter.abort();
    await expect(request).rejects.toThrow();
    await waitFor(() => engineModel(server), (m) => m.running === 0, 30_000);
    const after = await scrape(server.url);
    expect(delta(before, after, `edgellm_client_disconnects_total{model="${server.modelId}"}`)).toBe(1);
    expect((await post(server, { input: "after" })).status).toBe(200);
  });
});

describe("limits.requestTimeoutMs", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await embeddingModel("last"), { "limits.requestTimeoutMs": 300 });
  });
  afterAll(() => server?.stop());

  it("ends an embedding request past the deadline with a 408 and drops its remaining inputs", async () => {
    // A thousand inputs take seconds on this model, one decode each.
    const many = Array.from({ length: 1000 }, (_, i) => `document number ${i}`);
    const { status, body } = await post(server, { input: many });
    expect(status).toBe(408);
    expect(body.error.code).toBe("request_timeout");
    await waitFor(() => engineModel(server), (m) => m.running === 0, 30_000);
    expect((await post(server, { input: "after" })).status).toBe(200);
  });
});

describe("a chat model (no pooling type in its GGUF)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await tinyModel());
  });
  afterAll(() => server?.stop());

  it("answers 400 model_not_embedding, naming the model and what to serve instead", async () => {
    const { status, body } = await post(server, { model: server.modelId, input: "hello" });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: "invalid_request_error", param: "model", code: "model_not_embedding" });
    expect(body.error.message).toContain(server.modelId);
    expect(body.error.message).toMatch(/qwen3\.pooling_type/);
    expect(body.error.message).toMatch(/embedding model/);
    const engine = (await (await fetch(`${server.url}/v1/engine`)).json()) as { models: Array<Record<string, unknown>> };
    expect(engine.models[0]).toMatchObject({ pooling: null });
  });
});
