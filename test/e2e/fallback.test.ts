/**
 * Quantization fallback end to end: the real server serves a scripted model as q8_0 with its
 * q4_0 twin as fallback; a fake pressure source (the only fake) says when memory is short.
 * Sustained pressure swaps the model blue-green to q4_0 while openai-SDK streams run, and relief
 * swaps it back; every stream must end with the exact script, on either variant.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import OpenAI from "openai";
import { scriptedModel } from "../helpers/models.js";
import { waitFor } from "../helpers/stream.js";
import { streamLoad, timedStream } from "../helpers/chat.js";
import { loadConfig } from "../../src/config/load.js";
import { start, type Running } from "../../src/main.js";
import type { PressureReading, PressureSource } from "../../src/models/pressure.js";

const SCRIPT = "Under memory pressure the server steps down to a smaller quantization and comes back once the pressure is gone.";

/** Pressured while `pressured` is true; the reading carries numbers like the real `available` source. */
class FakePressure implements PressureSource {
  pressured = false;
  async read(): Promise<PressureReading> {
    const availableBytes = this.pressured ? 50 * 2 ** 20 : 900 * 2 ** 20;
    return {
      at: Date.now(),
      source: "available",
      availableBytes,
      budgetBytes: 1024 * 2 ** 20,
      pressured: this.pressured,
      reason: `MemAvailable ${availableBytes / 2 ** 20} MiB of a 1024 MiB budget (pressured below 10 %)`,
    };
  }
}

describe("quantization fallback under (fake) memory pressure", () => {
  const fake = new FakePressure();
  let running: Running;
  let url: string;
  let client: OpenAI;
  let q8: string;
  let q4: string;
  const logs: Array<Record<string, unknown>> = [];
  const dataDir = mkdtempSync(join(tmpdir(), "edgellm-data-"));

  beforeAll(async () => {
    q8 = await scriptedModel([SCRIPT], { quant: "q8_0" });
    q4 = await scriptedModel([SCRIPT], { quant: "q4_0" });
    const config = loadConfig(
      {
        set: {
          "model.source": q8,
          "model.alias": "scripted",
          models: [{ id: "scripted", source: q8, fallbacks: [q4] }],
          "model.contextSize": 1024,
          "model.sequences": 2,
          "model.threads": 1,
          "pressure.intervalMs": 50,
          "pressure.sustainMs": 300,
          "pressure.reliefMs": 300,
          "server.port": 0,
          "server.dataDir": dataDir,
        },
      },
      {},
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    running = await start(config, pino({ level: "info" }, sink), () => {}, { pressureSource: fake });
    const model = running.registry.list()[0]!;
    await waitFor(async () => model.state, (s) => s === "ready", 120_000);
    const address = running.app.server.address();
    if (!address || typeof address === "string") throw new Error("no TCP address");
    url = `http://127.0.0.1:${address.port}`;
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterAll(async () => {
    await running?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const stream = () => timedStream(client, "scripted");
  /** Two streams at a time until `until()`; returns every result. */
  const streamsUntil = (until: () => boolean) => streamLoad(client, "scripted", 2, until);

  const health = async () => (await (await fetch(`${url}/health`)).json()) as { status: string; fallback?: Record<string, { variant: number; source: string; reason: string; availableMiB: number }> };
  const metric = async (line: string) => (await (await fetch(`${url}/metrics`)).text()).split("\n").includes(line);

  it("swaps to q4_0 under sustained pressure with streams in flight, reports why, and swaps back after relief", async () => {
    const model = running.registry.list()[0]!;
    expect(q4).not.toBe(q8);
    expect(model.source).toBe(q8);
    const q8Pid = model.pid!;
    let swappedAt = 0;
    let done = false;
    const load = streamsUntil(() => done);
    fake.pressured = true;
    await waitFor(async () => model.source, (s) => s === q4, 120_000);
    swappedAt = Date.now();
    expect(model.pid).not.toBe(q8Pid);
    await new Promise((r) => setTimeout(r, 1000));
    done = true;
    const results = await load;
    for (const r of results) expect(r).toMatchObject({ text: SCRIPT, finish: "stop" });
    expect(results.some((r) => r.started < swappedAt && r.ended > swappedAt - 50)).toBe(true);
    expect(results.some((r) => r.started > swappedAt)).toBe(true);

    const swapLog = logs.find((l) => l.msg === "memory pressure: swapping to a smaller variant");
    expect(swapLog).toMatchObject({ model: "scripted", from: q8, to: q4, signal: "available", availableMiB: 50, budgetMiB: 1024 });
    expect(await health()).toMatchObject({ status: "ok", fallback: { scripted: { variant: 1, source: q4, availableMiB: 50 } } });
    expect(await metric('edgellm_model_variant{model="scripted"} 1')).toBe(true);
    expect(await metric('edgellm_model_fallback_swaps_total{model="scripted",direction="down"} 1')).toBe(true);
    // The q4_0 variant says the script too.
    expect((await stream()).text).toBe(SCRIPT);

    const q4Pid = model.pid!;
    fake.pressured = false;
    await waitFor(async () => model.source, (s) => s === q8, 120_000);
    expect(model.pid).not.toBe(q4Pid);
    expect((await health()).fallback).toBeUndefined();
    expect(await metric('edgellm_model_variant{model="scripted"} 0')).toBe(true);
    expect(await metric('edgellm_model_fallback_swaps_total{model="scripted",direction="up"} 1')).toBe(true);
    expect((await stream()).text).toBe(SCRIPT);
  });
});
