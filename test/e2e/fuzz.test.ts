/**
 * Property-based fuzzing of the real server (a bounded number of cases; `npm run fuzz -- --runs N`
 * runs many more): hostile requests never get a 5xx, never crash or hang the server, always get
 * an OpenAI error object for a 4xx, and a normal request is served afterwards. Clients that hang
 * up at random points leave every sequence idle.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import { scriptedModel, tinyModel } from "../helpers/models.js";
import { engineIdle, startTestServer, type TestServer } from "../helpers/server.js";
import { FUZZ_SERVER_SETTINGS, disconnectProperty, httpFuzzProperty } from "../helpers/http-fuzz.js";

const RUNS = Number(process.env["FUZZ_RUNS"] ?? 150);

/** The server is still whole: same worker process, never restarted, every slot idle, nothing queued. */
async function expectIntact(server: TestServer, pid: number): Promise<void> {
  const worker = server.running.registry.list()[0]!;
  await engineIdle(server, { ready: true });
  expect(worker.pid).toBe(pid);
  expect(worker.restarts).toBe(0);
  const res = await fetch(`${server.baseURL}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: server.modelId, messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
  });
  expect(res.status).toBe(200);
}

describe("fuzzing the HTTP API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await tinyModel(), FUZZ_SERVER_SETTINGS);
  });
  afterAll(() => server?.stop());

  it(`${RUNS} hostile requests: no 5xx, no crash or hang, OpenAI error objects, still serving`, async () => {
    const pid = server.running.registry.list()[0]!.pid!;
    const counts = new Map<number, number>();
    await fc.assert(httpFuzzProperty(server.url, server.modelId, counts), { numRuns: RUNS });
    // The mix reaches both sides: rejected requests and served ones.
    expect(counts.get(200)).toBeGreaterThan(0);
    expect(counts.get(400)).toBeGreaterThan(0);
    await expectIntact(server, pid);
  }, 300_000);
});

describe("clients hanging up at random points", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true }));
  });
  afterAll(() => server?.stop());

  it("leave no busy sequence, queued task or in-flight request", async () => {
    const pid = server.running.registry.list()[0]!.pid!;
    const settled = () => expectIntact(server, pid);
    await fc.assert(disconnectProperty(server.url, server.modelId, settled), { numRuns: Math.max(5, Math.round(RUNS / 15)) });
  }, 300_000);
});
