/**
 * Long fuzzing run against the real server on synthesized models:
 *   npm run fuzz -- --runs 5000 [--seed 42]
 * The same properties as test/e2e/fuzz.test.ts, as many cases as asked; prints the status
 * mix and, on failure, fast-check's shrunk counterexample with the seed to replay it.
 */
import { parseArgs } from "node:util";
import fc from "fast-check";
import { scriptedModel, tinyModel } from "../test/helpers/models.js";
import { startTestServer, type TestServer } from "../test/helpers/server.js";
import { FUZZ_SERVER_SETTINGS, disconnectProperty, httpFuzzProperty } from "../test/helpers/http-fuzz.js";
import { numberArg } from "./lib/args.js";
import { handleHelp } from "./lib/tool.js";

handleHelp(import.meta.url);
const { values } = parseArgs({ options: { runs: { type: "string", default: "1000" }, seed: { type: "string" } } });
const runs = numberArg("runs", values.runs, { min: 1 });
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : numberArg("seed", values.seed);

async function idle(server: TestServer): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const m = ((await (await fetch(`${server.url}/v1/engine`)).json()) as any).models[0];
    if (m.queued === 0 && m.inflight === 0 && m.slots.every((s: { phase: string }) => s.phase === "idle")) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("sequences still busy 10 s after every client hung up");
}

async function phase(name: string, server: TestServer, property: fc.IAsyncProperty<any>, numRuns: number): Promise<boolean> {
  const started = Date.now();
  const result = await fc.check(property, { numRuns, seed });
  const worker = server.running.registry.list()[0]!;
  const ok = !result.failed && worker.restarts === 0;
  console.log(`${name}: ${result.numRuns} cases in ${((Date.now() - started) / 1000).toFixed(1)} s, worker restarts ${worker.restarts}: ${ok ? "ok" : "FAILED"}`);
  if (result.failed) console.log(fc.defaultReportMessage(result));
  return ok;
}

console.log(`fuzzing with seed ${seed} (replay: npm run fuzz -- --runs ${runs} --seed ${seed})`);
const http = await startTestServer(await tinyModel(), FUZZ_SERVER_SETTINGS);
const counts = new Map<number, number>();
let ok = await phase("hostile requests", http, httpFuzzProperty(http.url, http.modelId, counts), runs);
console.log(`  statuses: ${[...counts].sort(([a], [b]) => a - b).map(([s, n]) => `${s}x${n}`).join(" ")}`);
await http.stop();

const loop = await startTestServer(await scriptedModel(["one two three four five six seven eight nine ten "], { loop: true }));
ok = (await phase("random disconnects", loop, disconnectProperty(loop.url, loop.modelId, () => idle(loop)), Math.max(5, Math.round(runs / 15)))) && ok;
await loop.stop();
process.exit(ok ? 0 : 1);
