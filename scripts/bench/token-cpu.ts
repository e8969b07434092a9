/**
 * Where the CPU of one streamed token goes, process by process and thread by thread, in edgellm
 * and in llama.cpp's llama-server on the same model, threads, slots and sampling: one stream at a
 * time (C = 1), as `npm run bench` sends it (the same request body, from scripts/bench/load.ts).
 *
 * Both servers run for the whole tool; each repetition measures them in turn, in alternating
 * order, with a short warm-up request first. A measurement reads every thread's CPU time from
 * /proc before and after `--requests` streamed requests of `--tokens` tokens (a 128-token prompt
 * each), and its own CPU (the client: HTTP and SSE parsing), and divides by the content chunks
 * after each request's first (one per token), so each request's own work (parsing, template,
 * prefill) is spread over its tokens. The time per token is the bench's TPOT: from a request's
 * first chunk to its end, over the chunks after the first.
 *
 * Threads are sorted into:
 *   decode      threads busy for at least 10% of the run's wall time: the ones running
 *               llama_decode (ggml's compute threads, and the libuv threads that take turns
 *               calling it in edgellm's worker; llama-server's main loop and its ggml thread)
 *   JS          a Node process's JavaScript thread (edgellm: the HTTP server, the worker's engine)
 *   other       the rest (HTTP threads of llama-server, Node's GC and libuv helpers)
 * The bar holds for runs of a few hundred tokens or more. In a short run, a libuv thread that
 * called llama_decode only a few times (the prompt's evaluation, say) can fall under it and count
 * as "other".
 *
 * On a box with as many cores as decode threads, every millisecond of CPU outside the decode
 * threads is taken from them while they compute, so the non-decode CPU per token is what a server
 * adds to the time per token beyond the decode itself.
 *
 * Each repetition also runs `llama-bench` tg over the same tokens after the same prompt length
 * (no server around the decode; skipped when not built), and each server's time per token is
 * compared with that repetition's.
 *
 *   npm run bench:token-cpu -- [--threads 2] [--tokens 256] [--requests 3] [--reps 3]
 *       [--servers edgellm,llama-server] [--model <file.gguf>] [--out <dir>]
 *       [--llama-bin vendor-build/llama.cpp/build/bin]
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ensureSyntheticModel } from "../../src/models/synthetic/index.js";
import { listArg, numberArg } from "../lib/args.js";
import { textOfTokens } from "../lib/prompts.js";
import { processTree, threadTicks } from "../lib/proc.js";
import { edgellmSpec, freePort, llamaServerSpec, startServer, stopAllOnExit, type RunningServer, type ServerSpec } from "../lib/servers.js";
import { fmt, percentile, table } from "../lib/stats.js";
import { handleHelp, logger, outputDir, ROOT } from "../lib/tool.js";
import { streamChat } from "./load.js";

handleHelp(import.meta.url);

type ServerName = "edgellm" | "llama-server";
const MODEL_ALIAS = "bench-model";

const { values: opt } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    tokens: { type: "string", default: "256" },
    requests: { type: "string", default: "3" },
    reps: { type: "string", default: "3" },
    servers: { type: "string", default: "edgellm,llama-server" },
    model: { type: "string" },
    "llama-bin": { type: "string", default: "vendor-build/llama.cpp/build/bin" },
    out: { type: "string" },
  },
  strict: true,
});

const threads = numberArg("threads", opt.threads, { min: 1 });
const tokens = numberArg("tokens", opt.tokens, { min: 2 });
const requests = numberArg("requests", opt.requests, { min: 1 });
const reps = numberArg("reps", opt.reps, { min: 1 });
const servers = listArg<ServerName>("servers", opt.servers!, ["edgellm", "llama-server"]);
const llamaServerBin = path.resolve(ROOT, opt["llama-bin"]!, "llama-server");
const llamaBenchBin = path.resolve(ROOT, opt["llama-bin"]!, "llama-bench");
const outDir = outputDir("token-cpu", opt.out);
const log = logger("token-cpu");
/** The bench's layout: 8 slots of 1536 tokens, one pool. */
const SLOTS = 8;
const CTX = 1536;
const DECODE_SHARE = 0.1;
const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

function spec(name: ServerName, model: string, port: number): ServerSpec {
  const run = { model, alias: MODEL_ALIAS, slots: SLOTS, ctxSize: CTX, threads, kvPool: "unified" } as const;
  const logFile = path.join(outDir, `${name}.log`);
  return name === "edgellm" ? edgellmSpec(run, port, logFile) : llamaServerSpec(run, llamaServerBin, port, logFile, "auto");
}

type Role = "decode" | "JS" | "other";
/** CPU per token by process ("server" is the root, "worker" its descendants) and role. */
type Split = Map<string, number>;

interface Measurement {
  server: ServerName;
  /** From each request's first chunk to its end, over the chunks after the first: the bench's TPOT. */
  msPerToken: number;
  itlP50: number;
  cpu: Split;
  clientMs: number;
}

function snapshot(root: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of processTree(root)) for (const [tid, ticks] of threadTicks(pid)) out.set(`${pid}/${tid}`, ticks);
  return out;
}

async function measure(name: ServerName, server: RunningServer, rep: number): Promise<Measurement> {
  const opts = { baseURL: server.baseURL, model: MODEL_ALIAS };
  const warm = await streamChat(opts, { messages: [{ role: "user", content: textOfTokens(16, 1) }], maxTokens: 8, seed: 1 });
  if (!warm.ok) throw new Error(`${name}: warm-up failed: ${warm.error}`);
  const root = server.child.pid!;
  const before = snapshot(root);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  let chunks = 0;
  let decodeMs = 0;
  const gaps: number[] = [];
  for (let i = 0; i < requests; i++) {
    const seed = 5000 + rep * 100 + i;
    const r = await streamChat(opts, { messages: [{ role: "user", content: textOfTokens(128, seed) }], maxTokens: tokens, seed });
    if (!r.ok) throw new Error(`${name}: request failed: ${r.error}`);
    // The first chunk carries the prompt's evaluation: the clock starts there.
    chunks += r.chunks - 1;
    decodeMs += r.e2eMs - r.ttftMs;
    gaps.push(...r.gapsMs);
  }
  const wallMs = performance.now() - t0;
  const client = process.cpuUsage(client0);
  const after = snapshot(root);
  const cpu: Split = new Map();
  for (const [key, ticks] of after) {
    const ms = (ticks - (before.get(key) ?? 0)) * TICK_MS;
    if (ms <= 0) continue;
    const [pid, tid] = key.split("/").map(Number) as [number, number];
    const role: Role = ms >= DECODE_SHARE * wallMs ? "decode" : name === "edgellm" && tid === pid ? "JS" : "other";
    const group = `${pid === root ? "server" : "worker"} ${role}`;
    cpu.set(group, (cpu.get(group) ?? 0) + ms / chunks);
  }
  return { server: name, msPerToken: decodeMs / chunks, itlP50: percentile(gaps, 50), cpu, clientMs: (client.user + client.system) / 1000 / chunks };
}

/** The chat prompt's length: 128 tokens of text plus the template's. */
const PROMPT_TOKENS = 140;

/** llama-bench's generation of the same tokens after the same prompt length, flash attention on: no server around it. */
function llamaBenchMsPerToken(model: string): number {
  const args = ["-m", model, "-t", String(threads), "-p", "0", "-n", String(tokens), "-d", String(PROMPT_TOKENS), "-r", "1", "-fa", "1", "-o", "json"];
  const res = spawnSync(llamaBenchBin, args, { encoding: "utf8", maxBuffer: 16 << 20 });
  if (res.status !== 0) throw new Error(`llama-bench failed (${res.status}): ${res.stderr.slice(-500)}`);
  const [row] = JSON.parse(res.stdout) as Array<{ avg_ts: number }>;
  return 1000 / row!.avg_ts;
}

const GROUPS = ["server decode", "server JS", "server other", "worker decode", "worker JS", "worker other"];
const outsideDecode = (m: Measurement) => [...m.cpu].filter(([g]) => !g.endsWith("decode")).reduce((sum, [, v]) => sum + v, 0);
const median = (xs: number[]) => percentile(xs, 50);

async function main(): Promise<void> {
  if (servers.includes("llama-server") && !existsSync(llamaServerBin)) {
    throw new Error(`${llamaServerBin} not found: run \`npm run build:llama-server\` first`);
  }
  const withBench = existsSync(llamaBenchBin);
  if (!withBench) log(`llama-bench not found at ${llamaBenchBin}; its column is left out`);
  const model = opt.model ?? (await ensureSyntheticModel({ kind: "preset", preset: "qwen3-0.6b", quant: "q8_0" }, path.join(ROOT, "models")));
  log(`model ${path.relative(ROOT, model)}; ${threads} threads; ${reps} repetitions of ${requests} x ${tokens} tokens; logs in ${outDir}`);
  const running = new Set<RunningServer>();
  stopAllOnExit(running);
  const started = new Map<ServerName, RunningServer>();
  for (const name of servers) {
    const server = await startServer(spec(name, model, await freePort()));
    running.add(server);
    started.set(name, server);
  }
  const results: Measurement[] = [];
  /** llama-bench's ms per token, one run per repetition. */
  const bench: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? servers : [...servers].reverse();
    for (const name of order) {
      const m = await measure(name, started.get(name)!, rep);
      results.push(m);
      log(`rep ${rep + 1} ${name}: ${fmt(m.msPerToken, 2)} ms/token, ITL p50 ${fmt(m.itlP50, 2)}, CPU outside decode ${fmt(outsideDecode(m), 3)} ms/token, client ${fmt(m.clientMs, 3)}`);
    }
    if (withBench) {
      bench.push(llamaBenchMsPerToken(model));
      log(`rep ${rep + 1} llama-bench: ${fmt(bench.at(-1)!, 2)} ms/token`);
    }
  }
  for (const server of running) await server.stop();

  const rows = servers.map((name) => {
    const mine = results.filter((r) => r.server === name);
    return [
      name,
      fmt(median(mine.map((m) => m.msPerToken)), 2),
      // Side by side: each repetition's server against the llama-bench run of the same repetition.
      ...(withBench ? [`${fmt(median(mine.map((m, i) => bench[i]! / m.msPerToken)), 2)}x`] : []),
      fmt(median(mine.map((m) => m.itlP50)), 2),
      ...GROUPS.map((g) => median(mine.map((m) => m.cpu.get(g) ?? 0))).map((v) => (v > 0 ? fmt(v, 3) : "-")),
      fmt(median(mine.map(outsideDecode)), 3),
      fmt(median(mine.map((m) => m.clientMs)), 3),
    ];
  });
  if (withBench) rows.push(["llama-bench tg", fmt(median(bench), 2), "1.00x", ...Array<string>(GROUPS.length + 3).fill("")]);
  console.log(`\nC = 1, ${threads} threads, medians of ${reps} repetitions; CPU in ms per token (${fmt(TICK_MS, 0)} ms ticks)\n`);
  const header = ["server", "ms/token", ...(withBench ? ["speed vs llama-bench"] : []), "ITL p50", ...GROUPS, "server outside decode", "client"];
  console.log(table(header, rows));
  if (servers.length === 2) {
    const diff = (f: (m: Measurement) => number) => {
      const a = results.filter((r) => r.server === servers[0]).map(f);
      const b = results.filter((r) => r.server === servers[1]).map(f);
      return median(a.map((x, i) => x - b[i]!));
    };
    console.log(
      `\n${servers[0]} - ${servers[1]}, median of the repetitions' differences: time per token ${fmt(diff((m) => m.msPerToken), 2)} ms, ` +
        `CPU outside decode ${fmt(diff(outsideDecode), 3)} ms`,
    );
  }
}

await main();
