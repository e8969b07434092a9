/**
 * API keys and CORS on the real server, with the OpenAI SDK and raw HTTP: 401 OpenAI errors,
 * both headers, keys from config, env and file, public paths, browser preflights with the
 * SDK's x-stainless-* headers, and no key ever in a log line.
 */
import { describe, it, expect, beforeAll, afterAll, onTestFinished } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import OpenAI from "openai";
import type { FastifyInstance } from "fastify";
import { tinyModel } from "../helpers/models.js";
import { loadConfig, ConfigError } from "../../src/config/load.js";
import { start, type Running } from "../../src/main.js";
import { buildServer } from "../../src/server/app.js";
import { ModelRegistry } from "../../src/router/registry.js";
import { createMetrics } from "../../src/metrics/definitions.js";
import { waitFor } from "../helpers/stream.js";

const CONFIG_KEY = "sk-config-0123456789abcdef";
const ENV_KEY = "sk-env-fedcba9876543210";
const FILE_KEY = "sk-file-5555aaaa5555bbbb";
const WRONG_KEY = "sk-wrong-0000000000000000";
const ORIGIN = "https://app.example";

describe("API keys and CORS on the real server", () => {
  let running: Running;
  let url: string;
  let logs = "";
  const dir = mkdtempSync(path.join(tmpdir(), "edgellm-keys-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeAll(async () => {
    const keyFile = path.join(dir, "keys.txt");
    writeFileSync(keyFile, `# edge gateway keys\n\n${FILE_KEY}\n`);
    const config = loadConfig(
      {
        set: {
          "model.source": await tinyModel(),
          "model.alias": "m",
          "model.contextSize": 256,
          "model.sequences": 1,
          "model.threads": 2,
          "server.port": 0,
          "server.apiKeys": CONFIG_KEY,
          "server.apiKeyFile": keyFile,
          "server.corsOrigins": ORIGIN,
        },
      },
      { EDGELLM_SERVER_API_KEYS: `${ENV_KEY}, ${CONFIG_KEY}` },
    );
    // --set wins over env for the same key: CONFIG_KEY alone, then the file key.
    expect(config.server.apiKeys).toEqual([CONFIG_KEY]);
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs += chunk.toString();
        done();
      },
    });
    running = await start(config, pino({ level: "trace" }, sink), () => {});
    const address = running.app.server.address();
    if (!address || typeof address === "string") throw new Error("no TCP address");
    url = `http://127.0.0.1:${address.port}`;
    await waitFor(async () => running.registry.allReady(), (ok) => ok, 60_000);
  });
  afterAll(() => running?.stop());

  const get = (p: string, headers: Record<string, string> = {}) => fetch(`${url}${p}`, { headers });

  it("no key or a wrong key is a 401 OpenAI authentication_error", async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: `Bearer ${WRONG_KEY}` }, { "x-api-key": WRONG_KEY }, { authorization: CONFIG_KEY }];
    for (const headers of attempts) {
      const res = await get("/v1/models", headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(await res.json()).toEqual({ error: { message: expect.any(String), type: "authentication_error", param: null, code: "invalid_api_key" } });
    }
  });

  it("keys of any length are just wrong, never a server error", async () => {
    for (const key of ["x", "k".repeat(8000), "\u00e9\u00e8 \u4e2d"]) {
      expect((await get("/v1/models", { "x-api-key": encodeURIComponent(key) })).status).toBe(401);
    }
  });

  it("accepts a key from config, the key file as Bearer or X-Api-Key", async () => {
    expect((await get("/v1/models", { authorization: `Bearer ${CONFIG_KEY}` })).status).toBe(200);
    expect((await get("/v1/models", { authorization: `bearer ${FILE_KEY}` })).status).toBe(200);
    expect((await get("/v1/models", { "x-api-key": FILE_KEY })).status).toBe(200);
    expect((await get("/v1/engine", { "x-api-key": CONFIG_KEY })).status).toBe(200);
  });

  it("the OpenAI SDK works with the key and raises AuthenticationError without it", async () => {
    const good = new OpenAI({ baseURL: `${url}/v1`, apiKey: CONFIG_KEY, maxRetries: 0 });
    const res = await good.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
    expect(res.usage!.completion_tokens).toBe(2);
    const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: WRONG_KEY, maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("/health, /v1/health and /metrics are public by default; everything else is not", async () => {
    expect((await get("/health")).status).toBe(200);
    expect((await get("/v1/health")).status).toBe(200);
    expect((await get("/metrics")).status).toBe(200);
    expect((await get("/v1/engine")).status).toBe(401);
    expect((await get("/nope")).status).toBe(401);
  });

  it("answers a browser preflight for an allowed origin with the SDK's x-stainless-* headers", async () => {
    const requested = "authorization,content-type,x-stainless-os,x-stainless-lang,x-stainless-retry-count,x-stainless-timeout";
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": requested },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const allowed = res.headers.get("access-control-allow-headers")!.split(/,\s*/);
    for (const h of requested.split(",")) expect(allowed).toContain(h);
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
  });

  it("answers a browser preflight for the Anthropic SDK's headers on /v1/messages", async () => {
    const requested = "x-api-key,content-type,anthropic-version,anthropic-dangerous-direct-browser-access,x-stainless-os";
    const res = await fetch(`${url}/v1/messages`, {
      method: "OPTIONS",
      headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": requested },
    });
    expect(res.status).toBe(204);
    const allowed = res.headers.get("access-control-allow-headers")!.split(/,\s*/);
    for (const h of requested.split(",")) expect(allowed).toContain(h);
  });

  it("gives CORS headers to allowed origins only, on errors too", async () => {
    const allowed = await get("/v1/models", { origin: ORIGIN, authorization: `Bearer ${CONFIG_KEY}` });
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(allowed.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const unauthorized = await get("/v1/models", { origin: ORIGIN });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const other = await get("/v1/models", { origin: "https://evil.example", authorization: `Bearer ${CONFIG_KEY}` });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("never writes a key to the log, not even a rejected one", async () => {
    await get("/v1/models", { authorization: `Bearer ${WRONG_KEY}` });
    expect(logs.length).toBeGreaterThan(1000);
    for (const key of [CONFIG_KEY, ENV_KEY, FILE_KEY, WRONG_KEY]) expect(logs).not.toContain(key);
  });
});

describe("auth and CORS configuration", () => {
  async function app(set: Record<string, unknown>): Promise<FastifyInstance> {
    const config = loadConfig({ set }, {});
    const logger = pino({ level: "silent" });
    const registry = new ModelRegistry({ config, logger });
    registry.define({ id: "m", sources: ["/nonexistent.gguf"], model: config.model });
    return buildServer({ config, logger, registry, metrics: createMetrics() });
  }

  it("without keys everything is open, and CORS is off", async () => {
    const a = await app({});
    const res = await a.inject({ method: "GET", url: "/v1/models", headers: { origin: ORIGIN } });
    expect(res.statusCode).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
    const preflight = await a.inject({ method: "OPTIONS", url: "/v1/chat/completions", headers: { origin: ORIGIN, "access-control-request-method": "POST" } });
    expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
    await a.close();
  });

  it("server.publicPaths replaces the public set; corsOrigins * allows any origin", async () => {
    const a = await app({ "server.apiKeys": "k1", "server.publicPaths": "/v1/models", "server.corsOrigins": "*" });
    expect((await a.inject({ method: "GET", url: "/v1/models" })).statusCode).toBe(200);
    expect((await a.inject({ method: "GET", url: "/health" })).statusCode).toBe(401);
    const res = await a.inject({ method: "GET", url: "/v1/models", headers: { origin: "https://any.example" } });
    expect(res.headers["access-control-allow-origin"]).toBe("*");
    await a.close();
  });

  it("the default host is loopback outside the container", () => {
    expect(loadConfig({}, {}).server.host).toBe("127.0.0.1");
  });

  it("keys come from env as a comma-separated list", () => {
    expect(loadConfig({}, { EDGELLM_SERVER_API_KEYS: " a1 ,b2,, " }).server.apiKeys).toEqual(["a1", "b2"]);
  });

  it("a bad key value or key file is a config error that shows no key", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "edgellm-keys-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const yamlFile = path.join(dir, "bad.yaml");
    writeFileSync(yamlFile, "server:\n  apiKeys: [sk-visible-secret, 12345]\n");
    expect(() => loadConfig({ file: yamlFile }, {})).toThrowError(/server\.apiKeys\.1.*\[redacted\]/);
    expect(() => loadConfig({ file: yamlFile }, {})).not.toThrowError(/sk-visible-secret/);
    const empty = path.join(dir, "empty.txt");
    writeFileSync(empty, "# nothing\n");
    await expect(app({ "server.apiKeyFile": empty })).rejects.toThrowError(ConfigError);
    await expect(app({ "server.apiKeyFile": path.join(dir, "missing.txt") })).rejects.toThrowError(/cannot read server.apiKeyFile .*missing.txt: ENOENT/);
  });
});
