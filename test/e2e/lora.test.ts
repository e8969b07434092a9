/**
 * LoRA adapters end to end: the real server and worker on the synthesized scripted LoRA pair
 * (the base model says LORA_BASE_REPLY, with the adapter LORA_ADAPTER_REPLY), driven by the
 * openai SDK and plain HTTP. Concurrent requests with and without the adapter share the
 * engine; since llama.cpp applies adapters to the whole context, a base request batched with
 * an adapter one would say the adapter's text.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { LORA_ADAPTER_REPLY, LORA_BASE_REPLY, scriptedLoraModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const KEY = "lora-test-key";
const AUTH = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

/** llama-server's per-request field, which the SDK's types do not know. */
type WithLora = { lora?: Array<{ id?: number | string; name?: string; scale?: number }> };

describe("LoRA adapters", () => {
  let server: TestServer;
  let client: OpenAI;
  let adapterPath: string;
  /** A copy of the adapter under its own path: removing it frees the file's adapter in the worker. */
  let copyDir: string;
  let copyPath: string;
  beforeAll(async () => {
    const pair = await scriptedLoraModel();
    adapterPath = pair.adapter;
    copyDir = mkdtempSync(join(tmpdir(), "edgellm-lora-"));
    copyPath = join(copyDir, "parrot.gguf");
    copyFileSync(pair.adapter, copyPath);
    server = await startTestServer(pair.model, {
      "model.sequences": 4,
      "model.lora": [`pirate=${pair.adapter}`],
      "server.apiKeys": [KEY],
    });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(copyDir, { recursive: true, force: true });
  });

  async function chat(model: string, extra: WithLora = {}, stream = false): Promise<{ text: string; model: string }> {
    const body = { model, messages: [{ role: "user" as const, content: "hi" }], ...extra };
    if (!stream) {
      const res = await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
      return { text: res.choices[0]!.message.content ?? "", model: res.model };
    }
    let text = "";
    let seen = "";
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming)) {
      text += chunk.choices[0]?.delta.content ?? "";
      seen = chunk.model;
    }
    return { text, model: seen };
  }

  it("lists the adapter as its own model with its parent", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => [m.id, (m as { parent?: string }).parent])).toEqual([
      [server.modelId, undefined],
      [`${server.modelId}:pirate`, server.modelId],
    ]);
    const one = await client.models.retrieve(`${server.modelId}:pirate`);
    expect(one).toMatchObject({ id: `${server.modelId}:pirate`, parent: server.modelId });
  });

  it("gives each of many concurrent requests its own text: by field, by index, by model id, or none", async () => {
    const id = server.modelId;
    const cases: Array<{ run: () => Promise<{ text: string; model: string }>; text: string; model: string }> = [
      { run: () => chat(id), text: LORA_BASE_REPLY, model: id },
      { run: () => chat(id, { lora: [{ id: "pirate", scale: 1 }] }), text: LORA_ADAPTER_REPLY, model: id },
      { run: () => chat(`${id}:pirate`, {}, true), text: LORA_ADAPTER_REPLY, model: `${id}:pirate` },
      { run: () => chat(id, {}, true), text: LORA_BASE_REPLY, model: id },
      { run: () => chat(id, { lora: [{ id: 0 }] }, true), text: LORA_ADAPTER_REPLY, model: id },
      { run: () => chat(id, { lora: [{ name: "pirate", scale: 0 }] }), text: LORA_BASE_REPLY, model: id },
      { run: () => chat(`${id}:pirate`), text: LORA_ADAPTER_REPLY, model: `${id}:pirate` },
      { run: () => chat(id), text: LORA_BASE_REPLY, model: id },
    ];
    // Twice over, all at once: more requests than sequences, so both adapter sets queue and interleave.
    const all = [...cases, ...cases];
    const results = await Promise.all(all.map((c) => c.run()));
    results.forEach((r, i) => expect(r, `request ${i}`).toEqual({ text: all[i]!.text, model: all[i]!.model }));
  });

  it("applies the adapter on /v1/completions and /v1/responses too", async () => {
    const prompt = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    const plain = await client.completions.create({ model: server.modelId, prompt, max_tokens: 40 });
    const adapted = await client.completions.create({ model: server.modelId, prompt, max_tokens: 40, lora: [{ id: "pirate" }] } as OpenAI.CompletionCreateParamsNonStreaming);
    expect([plain.choices[0]!.text, adapted.choices[0]!.text]).toEqual([LORA_BASE_REPLY, LORA_ADAPTER_REPLY]);
    const response = await client.responses.create({ model: `${server.modelId}:pirate`, input: "hi" });
    expect(response.output_text).toBe(LORA_ADAPTER_REPLY);
    expect(response.model).toBe(`${server.modelId}:pirate`);
    // Anthropic's format has no lora field: the model id selects the adapter.
    const message = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ model: `${server.modelId}:pirate`, max_tokens: 40, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(await message.json()).toMatchObject({ model: `${server.modelId}:pirate`, content: [{ type: "text", text: LORA_ADAPTER_REPLY }] });
  });

  it("reuses a cached prompt only under the same adapter set", async () => {
    const messages = [{ role: "user" as const, content: "a prompt no other test sends, long enough to be worth caching" }];
    const cached = async (extra: WithLora) => {
      const res = await client.chat.completions.create({ model: server.modelId, messages, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      return { text: res.choices[0]!.message.content, cached: res.usage!.prompt_tokens_details!.cached_tokens!, prompt: res.usage!.prompt_tokens };
    };
    const first = await cached({});
    const again = await cached({});
    expect(again).toEqual({ text: LORA_BASE_REPLY, cached: first.prompt - 1, prompt: first.prompt });
    // The base request's cache holds this whole prompt; the adapter request may not use it.
    const adapted = await cached({ lora: [{ id: "pirate" }] });
    expect(adapted.text).toBe(LORA_ADAPTER_REPLY);
    expect(adapted.cached).toBeLessThan(first.prompt / 2);
    expect(await cached({ lora: [{ id: "pirate" }] })).toEqual({ text: LORA_ADAPTER_REPLY, cached: first.prompt - 1, prompt: first.prompt });
  });

  it("refuses an unknown adapter with a 400 on param lora, and an unknown adapter model id with a 404", async () => {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "hi" }], lora: [{ id: "nope" }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { message: expect.stringContaining("'nope'"), type: "invalid_request_error", param: "lora", code: "adapter_not_found" },
    });
    const byIndex = await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: AUTH,
      body: JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "hi" }], lora: [{ id: 7, scale: 1 }] }),
    });
    expect(byIndex.status).toBe(400);
    expect(((await byIndex.json()) as { error: { param: string } }).error.param).toBe("lora");
    await expect(chat(`${server.modelId}:nope`)).rejects.toMatchObject({ status: 404, code: "model_not_found" });
  });

  it("adds and removes an adapter at run time, without restarting the model", async () => {
    const adapters = `${server.url}/v1/models/${server.modelId}/adapters`;
    const pid = server.running.registry.list()[0]!.pid;
    expect((await fetch(adapters, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ path: adapterPath }) })).status).toBe(401);

    const added = await fetch(adapters, { method: "POST", headers: AUTH, body: JSON.stringify({ path: copyPath, scale: 1 }) });
    expect(added.status).toBe(201);
    expect(await added.json()).toMatchObject({ id: "parrot", index: 1, model: `${server.modelId}:parrot`, path: copyPath, scale: 1 });
    const listed = (await (await fetch(adapters, { headers: AUTH })).json()) as { data: Array<{ id: string }> };
    expect(listed.data.map((a) => a.id)).toEqual(["pirate", "parrot"]);
    const [viaId, viaField, base] = await Promise.all([chat(`${server.modelId}:parrot`), chat(server.modelId, { lora: [{ id: "parrot" }] }), chat(server.modelId)]);
    expect([viaId.text, viaField.text, base.text]).toEqual([LORA_ADAPTER_REPLY, LORA_ADAPTER_REPLY, LORA_BASE_REPLY]);

    const removed = await fetch(`${adapters}/parrot`, { method: "DELETE", headers: AUTH });
    expect(await removed.json()).toEqual({ id: "parrot", object: "lora_adapter.deleted", deleted: true });
    await expect(chat(`${server.modelId}:parrot`)).rejects.toMatchObject({ status: 404 });
    await expect(chat(server.modelId, { lora: [{ id: "parrot" }] })).rejects.toMatchObject({ status: 400, param: "lora" });
    expect((await fetch(`${adapters}/parrot`, { method: "DELETE", headers: AUTH })).status).toBe(404);
    // The configured adapter still works, the freed file loads again, and the worker is the same process.
    expect((await chat(`${server.modelId}:pirate`)).text).toBe(LORA_ADAPTER_REPLY);
    expect((await fetch(adapters, { method: "POST", headers: AUTH, body: JSON.stringify({ path: copyPath }) })).status).toBe(201);
    expect((await chat(`${server.modelId}:parrot`)).text).toBe(LORA_ADAPTER_REPLY);
    expect((await fetch(`${adapters}/parrot`, { method: "DELETE", headers: AUTH })).status).toBe(200);
    expect(server.running.registry.list()[0]!.pid).toBe(pid);
  });

  it("refuses a file that is missing or not an adapter of this model with a 400 on param path", async () => {
    const adapters = `${server.url}/v1/models/${server.modelId}/adapters`;
    const missing = await fetch(adapters, { method: "POST", headers: AUTH, body: JSON.stringify({ path: "/nonexistent/x.gguf" }) });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "path", code: "adapter_file_not_found" });
    const notAdapter = await fetch(adapters, { method: "POST", headers: AUTH, body: JSON.stringify({ id: "model-as-adapter", path: server.running.registry.list()[0]!.info!.path }) });
    expect(notAdapter.status).toBe(400);
    expect(((await notAdapter.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "path", code: "invalid_adapter" });
    const taken = await fetch(adapters, { method: "POST", headers: AUTH, body: JSON.stringify({ id: "pirate", path: adapterPath }) });
    expect(taken.status).toBe(409);
    expect((await chat(server.modelId)).text).toBe(LORA_BASE_REPLY);
  });
});
