/**
 * End to end: the real server and worker on scripted synthesized models (real llama.cpp
 * inference, known output), driven by the `openai` SDK, plain HTTP and curl.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { postSse } from "../helpers/sse.js";

const SCRIPT = "Hello! I am a scripted model, and I say exactly this.";

describe("chat completions with the openai SDK on a scripted model", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel([SCRIPT]));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("lists the model by its file name", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([server.modelId]);
  });

  it("answers non-streaming with the exact script, OpenAI's shape and usage", async () => {
    const res = await client.chat.completions.create({
      model: server.modelId,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: [{ type: "text", text: "Say " }, { type: "text", text: "hi" }] },
      ],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.id).toMatch(/^chatcmpl-/);
    expect(res.model).toBe(server.modelId);
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.message).toMatchObject({ role: "assistant", content: SCRIPT });
    expect(res.choices[0]!.message).not.toHaveProperty("reasoning_content");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage!.prompt_tokens).toBeGreaterThan(5);
    expect(res.usage!.completion_tokens).toBeGreaterThan(5);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    expect(res.usage!.completion_tokens_details?.reasoning_tokens).toBe(0);
  });

  it("keeps the script under Qwen3's recommended sampling (temperature 0.6) and explicit sampling fields", async () => {
    const res = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.9,
      top_p: 0.9,
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: 0.2,
      user: "u-1",
      // @ts-expect-error llama.cpp/vLLM extensions are accepted as extra fields
      top_k: 30,
      min_p: 0.05,
      some_unknown_field: { ignored: true },
    });
    expect(res.choices[0]!.message.content).toBe(SCRIPT);
  });

  it("streams: role first, content deltas, a finish chunk, a usage chunk, then the stream ends", async () => {
    const stream = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(SCRIPT);
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(contentChunks.length).toBeGreaterThan(3);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish).toHaveLength(1);
    expect(finish[0]!.choices[0]!.finish_reason).toBe("stop");
    expect(finish[0]!.choices[0]!.delta).toEqual({});
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBeGreaterThan(5);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it("stop strings cut the output before the match and are never emitted, also when streaming", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], stop: ["scripted"] });
    expect(res.choices[0]!.message.content).toBe("Hello! I am a ");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    const stream = await client.chat.completions.create({
      model: server.modelId,
      messages: [{ role: "user", content: "hi" }],
      stop: [", and", "zzz"],
      stream: true,
    });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe("Hello! I am a scripted model");
  });

  it("max_tokens and max_completion_tokens end with finish_reason length and exact token counts", async () => {
    for (const field of ["max_tokens", "max_completion_tokens"] as const) {
      const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], [field]: 4 });
      expect(res.choices[0]!.finish_reason).toBe("length");
      expect(res.usage!.completion_tokens).toBe(4);
      expect(SCRIPT.startsWith(res.choices[0]!.message.content!)).toBe(true);
      expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    }
  });

  it("rejects prompt + max_tokens beyond the context with context_length_exceeded", async () => {
    const err = await client.chat.completions
      .create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], max_tokens: 5000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.code).toBe("context_length_exceeded");
    expect(e.message).toContain("maximum context length");
    const long = "word ".repeat(2000);
    const err2 = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: long }], stream: true }).catch((x: unknown) => x);
    expect((err2 as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("context_length_exceeded");
  });

  it("unknown model is a 404 NotFoundError", async () => {
    const err = await client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("n > 1 returns n choices", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "hi" }], n: 2 });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
    for (const c of res.choices) expect(c.message.content).toBe(SCRIPT);
  });

  it("raw SSE over plain HTTP: exact framing, [DONE] last", async () => {
    const r = await postSse(`${server.baseURL}/chat/completions`, {
      model: server.modelId,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.status).toBe(200);
    expect(r.contentType).toContain("text/event-stream");
    expect(r.data.at(-1)).toBe("[DONE]");
    const objs = r.data.slice(0, -1).map((d) => JSON.parse(d));
    expect(objs.every((o) => o.object === "chat.completion.chunk")).toBe(true);
    expect(objs.at(-1).choices).toEqual([]);
    expect(objs.at(-2).choices[0].finish_reason).toBe("stop");
    expect(r.raw.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("curl -d (form content type) gets the same answer", async () => {
    const { stdout } = await promisify(execFile)("curl", [
      "-sS", `${server.baseURL}/chat/completions`,
      "-d", JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "hi" }] }),
    ]);
    expect(JSON.parse(stdout).choices[0].message.content).toBe(SCRIPT);
  });

  it("curl without `model` is served by the one model there is", async () => {
    const { stdout } = await promisify(execFile)("curl", [
      "-sS", `${server.baseURL}/chat/completions`,
      "-d", JSON.stringify({ messages: [{ role: "user", content: "hi" }] }),
    ]);
    const body = JSON.parse(stdout);
    expect(body.model).toBe(server.modelId);
    expect(body.choices[0].message.content).toBe(SCRIPT);
  });
});

describe("streaming edge cases", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["Grüße aus Köln, 世界! 🎉🚀 naïve café — done."]), { "model.sequences": 1 });
  });
  afterAll(() => server?.stop());

  it("never emits broken UTF-8 across token boundaries", async () => {
    const r = await postSse(`${server.baseURL}/chat/completions`, { model: server.modelId, messages: [{ role: "user", content: "hi" }], stream: true });
    const pieces = r.data.slice(0, -1).map((d) => JSON.parse(d).choices[0]?.delta.content ?? "");
    expect(pieces.join("")).toBe("Grüße aus Köln, 世界! 🎉🚀 naïve café — done.");
    for (const p of pieces) expect(p).not.toContain("\uFFFD");
  });
});

describe("client disconnect", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["one two three four five six seven eight nine ten"], { loop: true }), { "model.sequences": 1 });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  it("an endless generation runs to max_tokens with finish_reason length", async () => {
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "count" }], max_tokens: 50 });
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(res.usage!.completion_tokens).toBe(50);
    // The script starts over after "ten": the loop is in the model's weights, not a stub.
    expect(res.choices[0]!.message.content).toMatch(/^one two three .* ten ?one two/);
  });

  it("stops generating when the client goes away, freeing the only slot", async () => {
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: server.modelId, messages: [{ role: "user", content: "count" }], stream: true, max_tokens: 900 },
      { signal: controller.signal },
    );
    let got = 0;
    try {
      for await (const c of stream) {
        if (c.choices[0]?.delta.content && ++got === 5) controller.abort();
      }
    } catch (err) {
      expect((err as Error).name).toMatch(/Abort/);
    }
    expect(got).toBe(5);
    // The worker must see the disconnect and free the slot, long before 900 tokens would be done.
    const slot = async () => (await engineModel(server)).slots[0]!;
    let phase = "";
    for (let i = 0; i < 100; i++) {
      phase = (await slot()).phase;
      if (phase === "idle") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(phase).toBe("idle");
    const held = (await slot()).cachedTokens;
    expect(held).toBeLessThan(300);
    const res = await client.chat.completions.create({ model: server.modelId, messages: [{ role: "user", content: "count" }], max_tokens: 3 });
    expect(res.usage!.completion_tokens).toBe(3);
  });
});
