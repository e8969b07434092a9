/**
 * Cold start: from spawning the server to its first `/health` 200 (the model loaded and
 * ready), with the model file in the page cache, the median of several runs per variant.
 *
 *   npx tsx scripts/bench/cold-start.ts [--model <file.gguf>] [--runs 5] [--threads 0]
 *       [--variants "npm start,node dist/cli.js,llama-server"] [--llama-bin vendor-build/llama.cpp/build/bin]
 *
 *   npm start         `npm start -- --model <file> --port <n> --host 127.0.0.1`: what a user runs
 *                     (scripts/start.mjs: dist/ up to date with src/, then the server from it)
 *   npm start (no estimate cache)
 *                     the same with a new, empty server.dataDir each run: the memory estimate is
 *                     computed and the weights repacked, as on the first start with a file and
 *                     settings (estimate-cache.ts, repack-cache.ts)
 *   node dist/cli.js  the same server without npm in front, as docker/entrypoint.sh runs it in the
 *                     image (on dist/ as the `npm start` runs built it)
 *   node dist/cli.js (no huge pages)
 *                     the same with model.hugePages=false: the worker's buffers on 4 KiB pages
 *   node dist/cli.js (no repack cache)
 *                     the same with model.repackCache=false: llama.cpp repacks the weights again
 *   tsx src/cli.ts    the same server run through tsx's TypeScript loader, as `npm start` did before
 *   llama-server      llama.cpp's server (`npm run build:llama-server`; skipped when not built) on the
 *                     same file and threads, with edgellm's default KV (4 slots, one 4096-cell pool)
 *   llama-server (huge pages)
 *                     the same with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which edgellm's worker
 *                     gets by default: what llama-server gains from the same setting
 *
 * The default model is the Qwen3-0.6B-shape q4_0 file `npm start` synthesizes when given no
 * model (made once under models/). One untimed start of every variant comes first (it warms the
 * page cache and lets `npm start` build dist/). The variants then take turns run by run, so a
 * change in machine load hits all of them. edgellm's own `loadMs` (the worker's Engine.load) is
 * read from its "model ready" log line; the rest of each run ("outside loadMs": starting the
 * processes, loading modules, building the server) is shown apart, and the ratio to llama-server's
 * median of the same run when it ran. A second table splits edgellm's runs along the path: the
 * main process listening (its `uptimeMs`), then the worker's phases from its "model loaded" line
 * (`phasesMs`: the worker process's own start, the llama.cpp backend, the memory check, the model
 * load, the context, the rest), then the main process's "model ready".
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { resolveModel } from "../../src/models/resolve.js";
import { workerEnv } from "../../src/router/worker-process.js";
import { freePort } from "../lib/servers.js";
import { fmt, percentile, table } from "../lib/stats.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const VARIANTS = [
  "npm start",
  "npm start (no estimate cache)",
  "node dist/cli.js",
  "node dist/cli.js (no huge pages)",
  "node dist/cli.js (no repack cache)",
  "tsx src/cli.ts",
  "llama-server",
  "llama-server (huge pages)",
] as const;
type Variant = (typeof VARIANTS)[number];

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "synthetic:qwen3-0.6b:q4_0" },
    runs: { type: "string", default: "5" },
    threads: { type: "string", default: "0" },
    variants: { type: "string", default: VARIANTS.join(",") },
    "llama-bin": { type: "string", default: join(ROOT, "vendor-build/llama.cpp/build/bin") },
  },
  strict: true,
});
const runs = Number(values.runs);
const threads = Number(values.threads);
const requested = values.variants.split(",").map((v) => v.trim());
for (const v of requested) if (!(VARIANTS as readonly string[]).includes(v)) throw new Error(`unknown variant '${v}' (${VARIANTS.join(", ")})`);
const llamaServer = join(values["llama-bin"], "llama-server");
const variants = (requested as Variant[]).filter((v) => {
  if (!isLlamaServer(v) || existsSync(llamaServer)) return true;
  console.log(`llama-server skipped: ${llamaServer} is not built (npm run build:llama-server)`);
  return false;
});
const model = await resolveModel(values.model, join(ROOT, "models"));

const dataDirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "edgellm-cold-"));
  dataDirs.push(dir);
  return dir;
}

function isLlamaServer(v: Variant): boolean {
  return v.startsWith("llama-server");
}

function command(variant: Variant, port: number): [string, string[], NodeJS.ProcessEnv?] {
  const serverArgs = ["--model", model.path, "--port", String(port), "--host", "127.0.0.1", "--threads", String(threads)];
  switch (variant) {
    case "npm start":
      return ["npm", ["start", "--silent", "--", ...serverArgs]];
    case "npm start (no estimate cache)":
      return ["npm", ["start", "--silent", "--", ...serverArgs, "--set", `server.dataDir=${freshDataDir()}`]];
    case "node dist/cli.js":
      return [process.execPath, ["--enable-source-maps", "dist/cli.js", ...serverArgs]];
    case "node dist/cli.js (no huge pages)":
      return [process.execPath, ["--enable-source-maps", "dist/cli.js", ...serverArgs, "--set", "model.hugePages=false"]];
    case "node dist/cli.js (no repack cache)":
      return [process.execPath, ["--enable-source-maps", "dist/cli.js", ...serverArgs, "--set", "model.repackCache=false"]];
    case "tsx src/cli.ts":
      return [join(ROOT, "node_modules/.bin/tsx"), ["src/cli.ts", ...serverArgs]];
    case "llama-server":
    case "llama-server (huge pages)":
      // edgellm's default KV: 4 sequences sharing one pool of 4096 cells. -t 0 is not "all cores"
      // for llama-server: leave it out for its default (all cores).
      return [
        llamaServer,
        ["-m", model.path, "--port", String(port), "--host", "127.0.0.1", "-np", "4", "-c", "4096", "--kv-unified", ...(threads > 0 ? ["-t", String(threads)] : [])],
        // "(huge pages)": the environment edgellm's worker gets with model.hugePages (the default).
        variant === "llama-server" ? undefined : workerEnv(process.env, true),
      ];
  }
}

interface Run {
  ms: number;
  loadMs?: number;
  /** The "model loaded" line's repackCache: hit, miss or off. */
  repackCache?: string;
  /** Milestones along the path (ms): main process listening, worker phases, model ready. */
  steps?: Record<string, number>;
}

/** The main process's uptime at "listening" and "model ready", and the worker's phasesMs, from the JSON log lines. */
function steps(output: string): Record<string, number> | undefined {
  const lines = output.split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line) as { msg?: string; uptimeMs?: number; phasesMs?: Record<string, number> }];
    } catch {
      return [];
    }
  });
  const listening = lines.find((l) => l.msg?.startsWith("listening"))?.uptimeMs;
  const phases = lines.find((l) => l.msg === "model loaded" && l.phasesMs)?.phasesMs;
  const ready = lines.find((l) => l.msg === "model ready")?.uptimeMs;
  if (listening === undefined || !phases || ready === undefined) return undefined;
  return { "main: listening (uptime)": listening, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`worker: ${k}`, v])), "main: model ready (uptime)": ready };
}

async function coldStart(variant: Variant): Promise<Run> {
  const port = await freePort();
  const [cmd, args, env] = command(variant, port);
  const started = performance.now();
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${variant} exited (${child.exitCode}) before /health answered 200:\n${output.slice(-2000)}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (performance.now() - started > 120_000) throw new Error(`${variant}: no /health 200 within 120 s`);
      await sleep(5);
    }
    const ms = performance.now() - started;
    // The "model ready" line may trail the first 200 by a moment.
    for (let i = 0; i < 50 && !isLlamaServer(variant) && !/"loadMs":\d+[^\n]*"model ready"/.test(output); i++) await sleep(20);
    const loadMs = /"loadMs":(\d+)[^\n]*"model ready"/.exec(output)?.[1];
    const path = steps(output);
    const repackCache = /"repackCache":"(\w+)"/.exec(output)?.[1];
    return { ms, ...(loadMs !== undefined && { loadMs: Number(loadMs) }), ...(repackCache && { repackCache }), ...(path && { steps: path }) };
  } finally {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // gone
    }
    await Promise.race([exited, sleep(10_000)]);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
}

console.log(`model ${model.path}, threads ${threads} (0 = all cores), ${runs} runs per variant after one untimed start each`);
for (const v of variants) await coldStart(v);
const results = new Map<Variant, Run[]>(variants.map((v) => [v, []]));
for (let i = 0; i < runs; i++) {
  for (const v of i % 2 === 0 ? variants : [...variants].reverse()) {
    const run = await coldStart(v);
    results.get(v)!.push(run);
    const details = [...(run.loadMs === undefined ? [] : [`loadMs ${run.loadMs}`]), ...(run.repackCache === undefined ? [] : [`repack cache ${run.repackCache}`])];
    console.log(`run ${i + 1} ${v}: ${fmt(run.ms, 0)} ms${details.length ? ` (${details.join(", ")})` : ""}`);
  }
}

const median = (xs: number[]) => percentile(xs, 50);
const llamaMedian = results.has("llama-server") ? median(results.get("llama-server")!.map((r) => r.ms)) : undefined;
const rows = variants.map((v) => {
  const rs = results.get(v)!;
  const ms = rs.map((r) => r.ms);
  const loads = rs.flatMap((r) => (r.loadMs === undefined ? [] : [r.loadMs]));
  const outside = rs.flatMap((r) => (r.loadMs === undefined ? [] : [r.ms - r.loadMs]));
  return [
    v,
    fmt(median(ms), 0),
    `${fmt(Math.min(...ms), 0)}–${fmt(Math.max(...ms), 0)}`,
    loads.length ? fmt(median(loads), 0) : "–",
    outside.length ? fmt(median(outside), 0) : "–",
    llamaMedian === undefined ? "–" : `${fmt(median(ms) / llamaMedian, 2)}x`,
  ];
});
console.log();
console.log(table(["variant", "start → /health 200, median ms", "min–max ms", "loadMs median", "outside loadMs, median ms", "vs llama-server"], rows));

const edgellm = variants.filter((v) => !isLlamaServer(v) && results.get(v)!.some((r) => r.steps));
if (edgellm.length > 0) {
  const names = [...new Set(edgellm.flatMap((v) => results.get(v)!.flatMap((r) => Object.keys(r.steps ?? {}))))];
  const stepRows = names.map((name) => [
    name,
    ...edgellm.map((v) => {
      const xs = results.get(v)!.flatMap((r) => (r.steps?.[name] === undefined ? [] : [r.steps[name]]));
      return xs.length ? fmt(median(xs), 0) : "–";
    }),
  ]);
  console.log();
  console.log(table(["step (median ms)", ...edgellm], stepRows));
}
for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
