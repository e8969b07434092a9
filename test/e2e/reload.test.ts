/**
 * Blue-green reload end to end: the real server and worker on a scripted model, several
 * concurrent streams through the openai SDK while the model's worker is replaced (by
 * POST /v1/models/reload, then by a re-read configuration with new settings, as SIGHUP does).
 * Every stream must finish with the exact script; none may fail. A LoRA adapter added at run time
 * survives the reload.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import OpenAI from "openai";
import pino from "pino";
import { Writable } from "node:stream";
import { LORA_ADAPTER_REPLY, LORA_BASE_REPLY, scriptedLoraModel, scriptedModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { loadConfig } from "../../src/config/load.js";
import { waitFor } from "../helpers/stream.js";
import { streamLoad, timedStream } from "../helpers/chat.js";

const SCRIPT =
  "Blue green reloads keep every stream whole: a fresh worker loads beside the old one, takes the new requests once ready, " +
  "and the old worker finishes what it started before it stops. Nobody sees an error, a gap or a repeated word while that happens.";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("blue-green reload under streaming load", () => {
  let server: TestServer;
  let client: OpenAI;
  let modelPath: string;
  /** The requests the old worker still had when each swap put the new one in its place (the server's own count). */
  const finishingAtSwap: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = JSON.parse(chunk.toString()) as { msg: string; finishing?: number };
      if (line.msg.startsWith("reload: new worker serving")) finishingAtSwap.push(line.finishing!);
      done();
    },
  });
  beforeAll(async () => {
    modelPath = await scriptedModel([SCRIPT]);
    server = await startTestServer(modelPath, { "model.sequences": 2 }, pino({ level: "info" }, sink));
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(() => server?.stop());

  const contextLength = async () =>
    ((await (await fetch(`${server.baseURL}/models/${server.modelId}`)).json()) as { meta: { context_length: number } }).meta.context_length;

  const stream = () => timedStream(client, server.modelId);
  const load = (concurrency: number, until: () => boolean) => streamLoad(client, server.modelId, concurrency, until);

  it("POST /v1/models/reload swaps the worker while streams run; every stream completes with the script", async () => {
    const model = server.running.registry.list()[0]!;
    const oldPid = model.pid!;
    let swappedAt = 0;
    const swapsBefore = finishingAtSwap.length;
    let done = false;
    const running = load(4, () => done);
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`${server.baseURL}/models/reload`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: server.modelId }) });
    swappedAt = Date.now();
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, model: { id: server.modelId, status: { value: "loaded" } } });
    expect(model.pid).not.toBe(oldPid);
    // Keep the load on for a while after the swap, so new streams go to the new worker.
    await new Promise((r) => setTimeout(r, 1500));
    done = true;
    const results = await running;
    for (const r of results) expect(r).toMatchObject({ text: SCRIPT, finish: "stop" });
    // The old worker had streams in flight when the new one took its place (they are among the
    // results above, all whole), and others started after the swap.
    expect(finishingAtSwap.slice(swapsBefore)).toEqual([expect.any(Number)]);
    expect(finishingAtSwap[swapsBefore]).toBeGreaterThan(0);
    expect(results.some((r) => r.started > swappedAt)).toBe(true);
    // The old worker stops once its streams are done.
    await waitFor(async () => alive(oldPid), (a) => !a, 20_000);
    expect(model.restarts).toBe(0);
  });

  it("a re-read configuration with new settings (what SIGHUP applies) reloads the model blue-green", async () => {
    const model = server.running.registry.list()[0]!;
    const oldPid = model.pid!;
    expect(await contextLength()).toBe(1024);
    const next = loadConfig(
      { set: { "model.source": modelPath, "model.contextSize": 2048, "model.sequences": 2, "model.threads": 1, "server.port": 0, "log.level": "silent" } },
      {},
    );
    let done = false;
    const running = load(2, () => done);
    await server.running.reloadModels(next);
    done = true;
    for (const r of await running) expect(r).toMatchObject({ text: SCRIPT, finish: "stop" });
    expect(model.pid).not.toBe(oldPid);
    expect(await contextLength()).toBe(2048);
  });
});

describe("blue-green reload keeps a model's LoRA adapters", () => {
  let server: TestServer;
  let client: OpenAI;
  beforeAll(async () => {
    const pair = await scriptedLoraModel();
    server = await startTestServer(pair.model);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: "unused", maxRetries: 0 });
    const added = await fetch(`${server.baseURL}/models/${server.modelId}/adapters`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "pirate", path: pair.adapter }),
    });
    expect(added.status).toBe(201);
  });
  afterAll(() => server?.stop());

  const say = async (model: string) =>
    (await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] })).choices[0]!.message.content;

  it("an adapter added at run time is loaded by the new worker too", async () => {
    expect(await say(`${server.modelId}:pirate`)).toBe(LORA_ADAPTER_REPLY);
    const model = server.running.registry.list()[0]!;
    const oldPid = model.pid;
    const res = await fetch(`${server.baseURL}/models/reload`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: server.modelId }) });
    expect(res.status).toBe(200);
    expect(model.pid).not.toBe(oldPid);
    expect(await say(`${server.modelId}:pirate`)).toBe(LORA_ADAPTER_REPLY);
    expect(await say(server.modelId)).toBe(LORA_BASE_REPLY);
  });
});
