/**
 * Property-based fuzzing of the real server (a bounded number of cases; `npm run fuzz -- --runs N`
 * runs many more): hostile requests never get a 5xx, never crash or hang the server, always get
 * an OpenAI error object for a 4xx, and a normal request is served afterwards. Clients that hang
 * up at random points leave every sequence idle.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** The request validators a server keeps on disk once compiled (src/server/lazy-validators.ts), by file and mtime. */
async function settledValidators(dir: string, timeoutMs = 60_000): Promise<Map<string, number>> {
  const read = () => new Map(existsSync(dir) ? readdirSync(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs] as const) : []);
  const deadline = Date.now() + timeoutMs;
  let last = read();
  for (let stable = 0; stable < 5; ) {
    if (Date.now() > deadline) throw new Error(`the server's stored validators in ${dir} did not settle within ${timeoutMs} ms (${last.size} files)`);
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    stable = now.size > 0 && now.size === last.size ? stable + 1 : 0;
    last = now;
  }
  return last;
}

describe("fuzzing the HTTP API", () => {
  let server: TestServer;
  let dataDir: string;
  let stored: Map<string, number>;
  beforeAll(async () => {
    // The fuzzed server validates with the code an earlier start stored (as every start after the
    // first does); the servers of the other tests compile theirs.
    dataDir = mkdtempSync(join(tmpdir(), "edgellm-fuzz-data-"));
    const settings = { ...FUZZ_SERVER_SETTINGS, "server.dataDir": dataDir };
    const first = await startTestServer(await tinyModel(), settings);
    stored = await settledValidators(join(dataDir, "validators"));
    await first.stop();
    server = await startTestServer(await tinyModel(), settings);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`${RUNS} hostile requests: no 5xx, no crash or hang, OpenAI error objects, still serving`, async () => {
    const pid = server.running.registry.list()[0]!.pid!;
    const counts = new Map<number, number>();
    await fc.assert(httpFuzzProperty(server.url, server.modelId, counts), { numRuns: RUNS });
    // The mix reaches both sides: rejected requests and served ones.
    expect(counts.get(200)).toBeGreaterThan(0);
    expect(counts.get(400)).toBeGreaterThan(0);
    await expectIntact(server, pid);
    // Every validator came from the files the first server wrote: none was compiled and rewritten.
    expect(stored.size).toBeGreaterThanOrEqual(10);
    expect(await settledValidators(join(dataDir, "validators"))).toEqual(stored);
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
