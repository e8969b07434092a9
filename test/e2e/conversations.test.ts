/**
 * /v1/conversations on the real server: the SQLite store behind the playground. Create, append,
 * list, rename, export, delete, OpenAI-style errors, API keys, and nothing lost across a restart.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tinyModel } from "../helpers/models.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { storeFile } from "../../src/store/db.js";
import { loadConfig } from "../../src/config/load.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const USER = { role: "user", content: "What is the capital of France?" };
const ASSISTANT = {
  type: "message",
  role: "assistant",
  content: [{ type: "output_text", text: "Paris." }],
  reasoning_content: "A geography question.",
  model: "m",
  usage: { prompt_tokens: 14, completion_tokens: 9, reasoning_tokens: 6 },
  metrics: { ttft_ms: 81.5, tokens_per_second: 42.25, duration_ms: 290, thinking_ms: 120.5 },
};

function client(base: () => string, headers: Record<string, string> = {}) {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: { ...headers, ...(body !== undefined && { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
  };
  return {
    get: (path: string) => call("GET", path),
    post: (path: string, body?: unknown) => call("POST", path, body),
    delete: (path: string) => call("DELETE", path),
  };
}

describe("conversations API", () => {
  let dataDir: string;
  let model: string;
  let server: TestServer;
  const api = client(() => server.url);
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "edgellm-conv-"));
    model = await tinyModel();
    server = await startTestServer(model, { "server.dataDir": dataDir });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("creates the database only on first use, in WAL mode", async () => {
    expect(existsSync(join(dataDir, "conversations.sqlite"))).toBe(false);
    expect((await api.get("/v1/conversations")).body).toEqual({ object: "list", data: [], first_id: null, last_id: null, has_more: false });
    expect(existsSync(join(dataDir, "conversations.sqlite"))).toBe(true);
    expect(existsSync(join(dataDir, "conversations.sqlite-wal"))).toBe(true);
  });

  it("creates a conversation with metadata and first items, then appends and lists items", async () => {
    const created = await api.post("/v1/conversations", { metadata: { title: "Geography" }, items: [USER] });
    expect(created.status).toBe(200);
    const conv = created.body;
    expect(conv).toEqual({ id: expect.stringMatching(/^conv_[0-9a-f]{48}$/), object: "conversation", created_at: expect.any(Number), updated_at: conv.created_at, metadata: { title: "Geography" } });
    expect(Math.abs(conv.created_at - Date.now() / 1000)).toBeLessThan(60);

    const added = await api.post(`/v1/conversations/${conv.id}/items`, { items: [ASSISTANT, { role: "user", content: "And of Italy?", status: "completed" }] });
    expect(added.status).toBe(200);
    expect(added.body.data).toHaveLength(2);
    const [reply] = added.body.data as Json[];
    expect(reply).toEqual({
      id: expect.stringMatching(/^msg_[0-9a-f]{48}$/),
      type: "message",
      status: "completed",
      role: "assistant",
      content: [{ type: "output_text", text: "Paris." }],
      created_at: expect.any(Number),
      reasoning_content: ASSISTANT.reasoning_content,
      model: "m",
      usage: ASSISTANT.usage,
      metrics: ASSISTANT.metrics,
    });

    const asc = await api.get(`/v1/conversations/${conv.id}/items?order=asc`);
    expect(asc.body.data.map((i: Json) => [i.role, i.content[0].type, i.content[0].text])).toEqual([
      ["user", "input_text", USER.content],
      ["assistant", "output_text", "Paris."],
      ["user", "input_text", "And of Italy?"],
    ]);
    // OpenAI's default order is newest first; `after` pages on from an item id.
    const desc = await api.get(`/v1/conversations/${conv.id}/items?limit=2`);
    expect(desc.body.data.map((i: Json) => i.content[0].text)).toEqual(["And of Italy?", "Paris."]);
    expect(desc.body).toMatchObject({ has_more: true, first_id: desc.body.data[0].id, last_id: desc.body.data[1].id });
    const rest = await api.get(`/v1/conversations/${conv.id}/items?limit=2&after=${desc.body.last_id}`);
    expect(rest.body.data.map((i: Json) => i.content[0].text)).toEqual([USER.content]);
    expect(rest.body.has_more).toBe(false);
    expect((await api.get(`/v1/conversations/${conv.id}/items/${reply!.id}`)).body).toEqual(reply);
  });

  it("lists conversations most recently updated first, renames through metadata, pages with after", async () => {
    const a = (await api.post("/v1/conversations", { metadata: { title: "A" } })).body;
    const b = (await api.post("/v1/conversations", { metadata: { title: "B" } })).body;
    const list = await api.get("/v1/conversations?limit=2");
    expect(list.body.data.map((c: Json) => c.id)).toEqual([b.id, a.id]);
    expect(list.body.has_more).toBe(true);

    // Adding an item moves A to the top.
    await api.post(`/v1/conversations/${a.id}/items`, { items: [USER] });
    expect((await api.get("/v1/conversations?limit=1")).body.data[0].id).toBe(a.id);

    const renamed = await api.post(`/v1/conversations/${a.id}`, { metadata: { title: "Renamed", pinned: "yes" } });
    expect(renamed.body).toMatchObject({ id: a.id, object: "conversation", metadata: { title: "Renamed", pinned: "yes" } });
    expect((await api.get(`/v1/conversations/${a.id}`)).body.metadata).toEqual({ title: "Renamed", pinned: "yes" });

    const all = (await api.get("/v1/conversations?limit=100")).body.data as Json[];
    const page1 = (await api.get("/v1/conversations?limit=1")).body;
    const page2 = (await api.get(`/v1/conversations?limit=100&after=${page1.last_id}`)).body;
    expect([...page1.data, ...page2.data].map((c: Json) => c.id)).toEqual(all.map((c) => c.id));
    expect((await api.get("/v1/conversations?order=asc&limit=100")).body.data.map((c: Json) => c.id)).toEqual(all.map((c) => c.id).reverse());
  });

  it("exports a conversation with all its items as a JSON attachment", async () => {
    const conv = (await api.post("/v1/conversations", { metadata: { title: "Export me" }, items: [USER, ASSISTANT] })).body;
    const res = await api.get(`/v1/conversations/${conv.id}/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${conv.id}.json"`);
    expect(res.body).toMatchObject({ ...conv, items: [{ role: "user" }, { role: "assistant", reasoning_content: ASSISTANT.reasoning_content, usage: ASSISTANT.usage }] });
    expect(res.body.items).toHaveLength(2);
  });

  it("deletes an item, then the conversation with its items", async () => {
    const conv = (await api.post("/v1/conversations", { items: [USER, ASSISTANT] })).body;
    const items = (await api.get(`/v1/conversations/${conv.id}/items?order=asc`)).body.data as Json[];
    const del = await api.delete(`/v1/conversations/${conv.id}/items/${items[0]!.id}`);
    expect(del.body).toMatchObject({ id: conv.id, object: "conversation" });
    expect((await api.get(`/v1/conversations/${conv.id}/items`)).body.data.map((i: Json) => i.id)).toEqual([items[1]!.id]);
    const gone = await api.get(`/v1/conversations/${conv.id}/items/${items[0]!.id}`);
    expect(gone).toMatchObject({ status: 404, body: { error: { type: "not_found_error", code: "item_not_found", param: "item_id" } } });

    expect((await api.delete(`/v1/conversations/${conv.id}`)).body).toEqual({ id: conv.id, object: "conversation.deleted", deleted: true });
    for (const path of [`/v1/conversations/${conv.id}`, `/v1/conversations/${conv.id}/items`, `/v1/conversations/${conv.id}/export`]) {
      const res = await api.get(path);
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ message: `No conversation found with id '${conv.id}'`, type: "not_found_error", param: "conversation_id", code: "conversation_not_found" });
    }
    expect((await api.delete(`/v1/conversations/${conv.id}`)).status).toBe(404);
    expect((await api.post(`/v1/conversations/${conv.id}/items`, { items: [USER] })).status).toBe(404);
    expect((await api.get("/v1/conversations?limit=100")).body.data.map((c: Json) => c.id)).not.toContain(conv.id);
  });

  it.each([
    ["a role the store does not keep", "/v1/conversations", { items: [{ role: "tool", content: "x" }] }, "items[0].role"],
    ["content of the wrong type", "/v1/conversations", { items: [{ role: "user", content: 5 }] }, "items[0].content"],
    ["an unknown content part type", "/v1/conversations", { items: [{ role: "user", content: [{ type: "image", text: "x" }] }] }, "items[0].content[0].type"],
    ["a negative token count", "/v1/conversations", { items: [{ ...ASSISTANT, usage: { prompt_tokens: -1, completion_tokens: 1 } }] }, "items[0].usage.prompt_tokens"],
    ["more than 16 metadata keys", "/v1/conversations", { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) }, "metadata"],
    ["a metadata value over 512 characters", "/v1/conversations", { metadata: { title: "x".repeat(513) } }, "metadata.title"],
    ["an unknown field", "/v1/conversations", { title: "x" }, "title"],
    ["more than 20 items", "/v1/conversations", { items: Array.from({ length: 21 }, () => USER) }, "items"],
  ])("rejects %s with a 400 naming the parameter", async (_name, path, body, param) => {
    const res = await api.post(path, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: "invalid_request_error", param, code: expect.any(String) });
  });

  it("rejects a bad limit or order, and an update without metadata", async () => {
    for (const q of ["limit=0", "limit=101", "limit=abc", "order=sideways"]) {
      const res = await api.get(`/v1/conversations?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.param, q).toBe(q.split("=")[0]);
    }
    const conv = (await api.post("/v1/conversations", {})).body;
    expect((await api.post(`/v1/conversations/${conv.id}`, {})).body.error).toMatchObject({ param: "metadata", code: "missing_required_parameter" });
    expect((await api.post(`/v1/conversations/${conv.id}/items`, {})).body.error).toMatchObject({ param: "items", code: "missing_required_parameter" });
  });

  it("keeps everything across a restart of the server", async () => {
    const before = (await api.get("/v1/conversations?limit=100")).body.data as Json[];
    expect(before.length).toBeGreaterThan(3);
    const itemsBefore = await Promise.all(before.map(async (c) => (await api.get(`/v1/conversations/${c.id}/export`)).body));
    await server.stop();
    server = await startTestServer(model, { "server.dataDir": dataDir });
    expect((await api.get("/v1/conversations?limit=100")).body.data).toEqual(before);
    const itemsAfter = await Promise.all(before.map(async (c) => (await api.get(`/v1/conversations/${c.id}/export`)).body));
    expect(itemsAfter).toEqual(itemsBefore);
    // And the store keeps working after the restart.
    const added = await api.post(`/v1/conversations/${before[0]!.id}/items`, { items: [USER] });
    expect(added.status).toBe(200);
  });
});

describe("conversations with API keys, and the page switched off", () => {
  let dataDir: string;
  let server: TestServer;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "edgellm-conv-"));
    server = await startTestServer(await tinyModel(), { "server.dataDir": dataDir, "server.apiKeys": "sekrit", "server.ui": false });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("asks for the key on every conversations route and on /props", async () => {
    const anonymous = client(() => server.url);
    for (const res of [await anonymous.get("/v1/conversations"), await anonymous.post("/v1/conversations", {}), await anonymous.get("/props"), await anonymous.delete("/v1/conversations/conv_x")]) {
      expect(res.status).toBe(401);
      expect(res.body.error.type).toBe("authentication_error");
    }
    const keyed = client(() => server.url, { authorization: "Bearer sekrit" });
    const conv = await keyed.post("/v1/conversations", { metadata: { title: "t" } });
    expect(conv.status).toBe(200);
    expect((await keyed.get(`/v1/conversations/${conv.body.id}`)).body.metadata).toEqual({ title: "t" });
  });

  it("server.ui false: no page at / while the API answers", async () => {
    const res = await fetch(`${server.url}/`, { headers: { authorization: "Bearer sekrit" } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as Json).error.code).toBe("unknown_url");
    expect((await fetch(`${server.url}/ui/app.js`, { headers: { authorization: "Bearer sekrit" } })).status).toBe(404);
  });
});

describe("where the database lives", () => {
  it("server.dataDir, or data/ beside model.dir", () => {
    expect(storeFile(loadConfig({ set: { "model.dir": "/srv/edge/models" } }, {}))).toBe("/srv/edge/data/conversations.sqlite");
    expect(storeFile(loadConfig({ set: { "server.dataDir": "/var/lib/edgellm" } }, {}))).toBe("/var/lib/edgellm/conversations.sqlite");
    expect(storeFile(loadConfig({}, { EDGELLM_SERVER_DATA_DIR: "/tmp/d" }))).toBe("/tmp/d/conversations.sqlite");
  });
});
