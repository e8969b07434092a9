/**
 * Several models end to end: the real server with one worker process per loaded model, scripted
 * models (each answers its own sentence) in a model.dir, driven by the openai SDK and fetch.
 * On-demand loading (with SSE heartbeats while a streaming request waits), LRU unloading at
 * model.maxLoaded that spares a model with a request in flight, keep_alive, the admin endpoints
 * behind API keys, and the per-model state gauges.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { openStream } from "../helpers/stream.js";
import { waitFor } from "../helpers/stream.js";
import { estimateMemory } from "../../src/engine/memory-budget.js";
import { unifiedKvExpected } from "../../src/engine/backend.js";
import { loadConfig } from "../../src/config/load.js";

const SCRIPTS = { alpha: "Alpha answers.", beta: "Beta answers.", gamma: "Gamma answers." } as const;
type Id = keyof typeof SCRIPTS;

/** A model.dir holding alpha.gguf, beta.gguf and gamma.gguf (links to scripted models); `loop` ones never stop on their own. */
async function modelDir(loop: Id[] = []): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "edgellm-models-"));
  for (const [id, text] of Object.entries(SCRIPTS)) {
    symlinkSync(await scriptedModel([text], loop.includes(id as Id) ? { loop: true } : {}), join(dir, `${id}.gguf`));
  }
  return dir;
}

interface ListedModel {
  id: string;
  status: { value: string; failed?: boolean };
  expires_at: string | null;
}

async function listed(server: TestServer, headers: Record<string, string> = {}): Promise<Record<string, ListedModel>> {
  const body = (await (await fetch(`${server.baseURL}/models`, { headers })).json()) as { data: ListedModel[] };
  return Object.fromEntries(body.data.map((m) => [m.id, m]));
}

const states = async (server: TestServer, headers: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(await listed(server, headers)).map(([id, m]) => [id, m.status.value]));

const ask = (client: OpenAI, model: string, extra: Record<string, unknown> = {}) =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], chat_template_kwargs: { enable_thinking: false }, ...extra } as never) as Promise<OpenAI.ChatCompletion>;

describe("several models: on-demand load and LRU unload at model.maxLoaded", () => {
  let server: TestServer;
  let client: OpenAI;
  let dir: string;
  beforeAll(async () => {
    dir = await modelDir(["beta"]);
    server = await startTestServer(join(dir, "alpha.gguf"), { "model.dir": dir, "model.maxLoaded": 2, "server.sseHeartbeatMs": 20, "model.contextSize": 4096 });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists every .gguf in model.dir with its state; the --model one is loaded at start", async () => {
    expect(server.modelId).toBe("alpha");
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["alpha", "beta", "gamma"]);
    expect(await states(server)).toEqual({ alpha: "loaded", beta: "unloaded", gamma: "unloaded" });
  });

  it("loads an unloaded model when a request names it; the request waits and gets that model's answer", async () => {
    const res = await ask(client, "beta", { max_tokens: 4 });
    expect(res.model).toBe("beta");
    // beta loops its script; 4 tokens cover its first sentence and the start of the next.
    expect(res.choices[0]!.message.content).toMatch(/^Beta answers\.B/);
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(await states(server)).toEqual({ alpha: "loaded", beta: "loaded", gamma: "unloaded" });
    // A request without `model` still goes to the --model one.
    const plain = (await (await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], chat_template_kwargs: { enable_thinking: false } }),
    })).json()) as OpenAI.ChatCompletion;
    expect(plain.model).toBe("alpha");
    expect(plain.choices[0]!.message.content).toBe(SCRIPTS.alpha);
  });

  it("a streaming request for an unloaded model gets SSE heartbeats while it loads; the least recently used idle model makes room", async () => {
    const res = await fetch(`${server.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gamma", stream: true, messages: [{ role: "user", content: "hi" }], chat_template_kwargs: { enable_thinking: false } }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const firstData = text.indexOf("data: ");
    expect(text.slice(0, firstData)).toMatch(/^(: heartbeat\n\n)+$/);
    const content = text
      .split("\n\n")
      .filter((b) => b.startsWith("data: {"))
      .map((b) => (JSON.parse(b.slice(6)) as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? "")
      .join("");
    expect(content).toBe(SCRIPTS.gamma);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    // alpha served the plain request after beta, so beta was the least recently used.
    expect(await states(server)).toEqual({ alpha: "loaded", beta: "unloaded", gamma: "loaded" });
  });

  it("never unloads a model with a request in flight, even the least recently used one", async () => {
    await ask(client, "beta", { max_tokens: 1 }); // resident: gamma, beta (alpha made room)
    expect(await states(server)).toEqual({ alpha: "unloaded", beta: "loaded", gamma: "loaded" });
    // beta (a looping script) streams for a long while; gamma is used after it started.
    const long = await openStream(`${server.baseURL}/chat/completions`, {
      model: "beta",
      stream: true,
      max_tokens: 4000,
      messages: [{ role: "user", content: "hi" }],
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(await long.next()).toBeDefined();
    expect((await ask(client, "gamma")).choices[0]!.message.content).toBe(SCRIPTS.gamma);
    // Loading alpha must unload one: beta is least recently used but busy, so gamma goes.
    expect((await ask(client, "alpha")).choices[0]!.message.content).toBe(SCRIPTS.alpha);
    expect(await states(server)).toEqual({ alpha: "loaded", beta: "loaded", gamma: "unloaded" });
    long.abort();
  });

  it("exports a state gauge per model", async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('edgellm_model_state{model="alpha",state="loaded"} 1');
    expect(text).toContain('edgellm_model_state{model="gamma",state="unloaded"} 1');
    expect(text).toContain('edgellm_model_state{model="gamma",state="loaded"} 0');
    expect(text).toContain("edgellm_models_loaded 2");
  });
});

describe("keep_alive, idle unload and the admin endpoints", () => {
  const KEY = "admin-key";
  const auth = { authorization: `Bearer ${KEY}` };
  let server: TestServer;
  let client: OpenAI;
  let dir: string;
  beforeAll(async () => {
    dir = await modelDir();
    server = await startTestServer(join(dir, "alpha.gguf"), { "model.dir": dir, "model.idleUnloadSec": 1, "server.apiKeys": [KEY] });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (action: string, body: unknown, headers: Record<string, string> = auth) =>
    fetch(`${server.baseURL}/models/${action}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

  it("keep_alive 0 unloads the model right after the request", async () => {
    const res = await ask(client, "beta", { keep_alive: 0 });
    expect(res.choices[0]!.message.content).toBe(SCRIPTS.beta);
    await waitFor(() => states(server, auth), (s) => s.beta === "unloaded", 10_000);
  });

  it("keep_alive -1 keeps the model loaded past model.idleUnloadSec; without it the model unloads when idle", async () => {
    await ask(client, "beta", { keep_alive: -1 });
    await ask(client, "gamma", { keep_alive: "1s" });
    expect((await listed(server, auth)).beta!.expires_at).toBeNull();
    expect((await listed(server, auth)).gamma!.expires_at).not.toBeNull();
    await waitFor(() => states(server, auth), (s) => s.gamma === "unloaded", 10_000);
    // alpha was loaded at start, used by nobody: idle for model.idleUnloadSec.
    expect(await states(server, auth)).toEqual({ alpha: "unloaded", beta: "loaded", gamma: "unloaded" });
    // A default model unloaded for idleness is not a health problem.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("a bad keep_alive is a 400 naming it", async () => {
    const err = await ask(client, "beta", { keep_alive: "soon" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("keep_alive");
  });

  it("POST /v1/models/load and /unload need the API key, load and unload, and name unknown models", async () => {
    expect((await admin("load", { model: "gamma" }, {})).status).toBe(401);
    const loaded = await admin("load", { model: "gamma", keep_alive: -1 });
    expect(loaded.status).toBe(200);
    expect(await loaded.json()).toMatchObject({ success: true, model: { id: "gamma", status: { value: "loaded" } } });
    const unloaded = await admin("unload", { model: "beta" });
    expect(await unloaded.json()).toMatchObject({ success: true, model: { id: "beta", status: { value: "unloaded" } } });
    expect((await states(server, auth)).beta).toBe("unloaded");
    const missing = await admin("load", { model: "delta" });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
    const bad = await admin("unload", {});
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("model");
  });
});

describe("memory admission: model.memoryBudgetMB bounds the loaded models together", () => {
  let server: TestServer;
  let client: OpenAI;
  let dir: string;
  let oneMiB: number;
  let budgetMiB: number;
  beforeAll(async () => {
    dir = await modelDir(["beta"]);
    const set = { "model.dir": dir, "model.contextSize": 2048 };
    // Room for one model, not two: every model here has the same shape, so the same estimate.
    const settings = loadConfig({ set: { ...set, "model.sequences": 2, "model.threads": 1 } }, {}).model;
    const estimate = await estimateMemory(undefined, join(dir, "alpha.gguf"), settings, await unifiedKvExpected(settings.kvPool));
    oneMiB = Math.ceil((estimate.weightsBytes + estimate.contextBytes) / 2 ** 20);
    budgetMiB = Math.ceil(oneMiB * 1.5);
    server = await startTestServer(join(dir, "alpha.gguf"), { ...set, "model.memoryBudgetMB": budgetMiB });
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("unloads an idle model to make room; with every loaded model busy, answers 503 with the numbers", async () => {
    const long = await openStream(`${server.baseURL}/chat/completions`, {
      model: "beta",
      stream: true,
      max_tokens: 2000,
      messages: [{ role: "user", content: "hi" }],
      chat_template_kwargs: { enable_thinking: false },
    });
    expect(await long.next()).toBeDefined();
    expect(await states(server)).toEqual({ alpha: "unloaded", beta: "loaded", gamma: "unloaded" });
    const err = await ask(client, "gamma").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect(apiErr.status).toBe(503);
    expect(apiErr.code).toBe("insufficient_memory");
    expect(apiErr.message).toContain(`Cannot load model 'gamma': it needs about ${oneMiB} MiB, the loaded models use about ${oneMiB} MiB and model.memoryBudgetMB is ${budgetMiB} MiB`);
    long.abort();
  });
});
