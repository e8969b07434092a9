/**
 * npm run soak -- [options]
 *
 * Soak test against the real server: starts it as `npm start` does (`scripts/start.mjs`, the
 * server from dist/) as a child process on a free loopback port, then N concurrent clients send
 * streaming chat completions (with usage) at a target request rate for a bounded duration; a
 * fraction of them hang up at random points (while admitted, queued, or mid-stream) to exercise
 * cancellation. Afterwards it checks that the engine is idle again (every slot idle, queue 0,
 * nothing in flight, no worker restart), that a normal request still succeeds, and that SIGTERM
 * stops the server with exit code 0 and no process left behind.
 *
 * Reports completed requests, 429s (deliberate backpressure), other errors, disconnects made,
 * TTFT and end-to-end p50/p99, output tok/s, and the RSS of the server's process tree (HTTP
 * process + model worker, from /proc) after the warm-up and at the end of the load (each the
 * median of a window a third of the post-warm-up time wide; see medianIn).
 * Exits 1 on any client-side error other than a 429, an error in the server's log, a busy
 * engine after the run, a failed shutdown, RSS growth of 5% or more after warm-up, or a p99 TTFT
 * of the requests sent in the last 5 minutes (a third of the time after warm-up in shorter runs)
 * above 1.2x that of the first 5 minutes after warm-up.
 *
 * Options (defaults finish in about 3 minutes with the tiny model on 2 cores):
 *   --clients 50            concurrent clients (each sends its requests one after the other)
 *   --rate 20               target requests per second over all clients (fewer when every client is
 *                           busy: the report shows the rate achieved and how late requests started)
 *   --duration 120          seconds of load; in-flight requests then finish (bounded by --request-timeout)
 *   --model synthetic:tiny  a .gguf path or synthetic:<preset>[:quant] (synthesized once into models/)
 *   --max-tokens 32 --prompt-tokens 48
 *   --parallel 4            server sequences (slots)
 *   --threads 1             server decode threads (0 = all cores). The soak hunts errors, stuck slots
 *                           and leaks, not peak speed, and its own clients and the server's HTTP process
 *                           need CPU too: with every core decoding, llama.cpp's threads wait for each
 *                           other whenever one is descheduled (about 20x slower on a busy 2-core box).
 *   --heap-mb 256           V8 heap limit of the server and its worker (NODE_OPTIONS=--max-old-space-size),
 *                           0 = V8's default. On a large host V8 lets the worker's garbage reach gigabytes
 *                           before a major collection, so RSS would measure collection timing, not leaks;
 *                           a small limit, as on a 1 GB gateway, keeps the sawtooth small and short.
 *   --disconnect 0.1        fraction of requests that hang up on purpose
 *   --warmup 0.15           fraction of the duration before the reference RSS window starts
 *   --per-client-limit 0    limits.maxConcurrentRequestsPerClient for the server. Every client here
 *                           shares 127.0.0.1, so the default 32 would answer 429 to clients 33..50;
 *                           0 measures the engine. Set it below --clients to soak the 429 path.
 *   --request-timeout 120   client-side bound on one request, in seconds
 *   --seed 1                prompts and disconnect plans are repeatable for a seed
 *   --out <dir>             server log (default /tmp/edgellm-soak-<time>)
 */
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { resolveModel } from "../src/models/resolve.js";
import { numberArg } from "./lib/args.js";
import { groupMembers, machineLoad, treeRss, type TreeRss } from "./lib/proc.js";
import { rng, textOfTokens } from "./lib/prompts.js";
import { commandLine, freePort, startServer, stopAllOnExit, type RunningServer } from "./lib/servers.js";
import { fmt, mib, percentile } from "./lib/stats.js";
import { handleHelp, logger, outputDir, ROOT } from "./lib/tool.js";
import { soakRequest, type DisconnectPlan, type DisconnectPhase, type Outcome, type SoakTarget } from "./soak/client.js";

handleHelp(import.meta.url);

const MODEL_ALIAS = "soak";
const RSS_GROWTH_LIMIT_PCT = 5;
/** The p99 TTFT of the last window after warm-up may be at most this multiple of the first one's (windows of at most TTFT_WINDOW_S). */
const TTFT_DRIFT_LIMIT = 1.2;
const TTFT_WINDOW_S = 300;
const RSS_SAMPLE_MS = 1000;
/** Distinct prompts: requests repeat them at random, so both fresh prefills and prefix-cache hits happen. */
const PROMPT_POOL = 32;
/** Share of disconnects made on a short timer from the send rather than after a chunk count. */
const TIMED_DISCONNECT_SHARE = 0.2;
/** Upper bound of that timer: long enough to land while the request is being admitted, before the headers. */
const TIMED_DISCONNECT_MAX_MS = 50;
/** How long the engine may take to wind down cancelled work once every client is done. */
const IDLE_WAIT_MS = 15_000;
/** The server's default shutdown grace (20 s) plus the worker's own stop bound (10 s) and slack. */
const SHUTDOWN_WAIT_MS = 40_000;

/** Servers still to stop: killed if the soak is interrupted or throws. */
const running = new Set<RunningServer>();
stopAllOnExit(running);

const { values: opt } = parseArgs({
  options: {
    clients: { type: "string", default: "50" },
    rate: { type: "string", default: "20" },
    duration: { type: "string", default: "120" },
    model: { type: "string", default: "synthetic:tiny" },
    "max-tokens": { type: "string", default: "32" },
    "prompt-tokens": { type: "string", default: "48" },
    parallel: { type: "string", default: "4" },
    threads: { type: "string", default: "1" },
    "heap-mb": { type: "string", default: "256" },
    disconnect: { type: "string", default: "0.1" },
    warmup: { type: "string", default: "0.15" },
    "per-client-limit": { type: "string", default: "0" },
    "request-timeout": { type: "string", default: "120" },
    seed: { type: "string", default: "1" },
    out: { type: "string" },
  },
  strict: true,
});

const num = (name: keyof typeof opt, min: number, max = Number.MAX_SAFE_INTEGER, integer = true) => numberArg(name, opt[name], { min, max, integer });

const cfg = {
  clients: num("clients", 1, 10_000),
  rate: num("rate", 0.01, 10_000, false),
  durationS: num("duration", 1, 24 * 3600, false),
  maxTokens: num("max-tokens", 1),
  promptTokens: num("prompt-tokens", 1),
  parallel: num("parallel", 1),
  threads: num("threads", 0),
  heapMb: num("heap-mb", 0),
  disconnect: num("disconnect", 0, 1, false),
  warmup: num("warmup", 0, 0.9, false),
  perClientLimit: num("per-client-limit", 0),
  requestTimeoutMs: num("request-timeout", 1) * 1000,
  seed: num("seed", 0),
};
const outDir = outputDir("soak", opt.out);
const log = logger("soak");

// ---- load -----------------------------------------------------------------------------------

interface Sent {
  outcome: Outcome;
  /** How late the request started against its slot in the rate schedule (all clients busy). */
  lagMs: number;
  /** Seconds since the load started, when the request was sent. */
  startS: number;
}

interface RssSample extends TreeRss {
  /** Seconds since the load started. */
  t: number;
}

const total = (s: TreeRss | undefined) => (s ? s.server + s.worker : Number.NaN);

interface LoadRun {
  records: Sent[];
  planned: number;
  disconnectsPlanned: number;
  wallMs: number;
  rss: RssSample[];
}

/**
 * `clients` loops share one arrival schedule (request i is due at i / rate seconds); each takes
 * the next due request, waits for its time, sends it and waits for its end. Bounded twice: at
 * most rate x duration requests, and none started after the duration; each request is bounded
 * by the client timeout.
 */
async function runLoad(target: SoakTarget, serverPid: number, prompts: string[]): Promise<LoadRun> {
  const random = rng(cfg.seed);
  const planned = Math.floor(cfg.rate * cfg.durationS);
  const intervalMs = 1000 / cfg.rate;
  const durationMs = cfg.durationS * 1000;
  const records: Sent[] = [];
  const rss: RssSample[] = [];
  let next = 0;
  let disconnectsPlanned = 0;
  let inFlight = 0;
  const t0 = performance.now();
  const elapsedS = () => (performance.now() - t0) / 1000;
  const sampler = setInterval(() => rss.push({ t: elapsedS(), ...treeRss(serverPid) }), RSS_SAMPLE_MS);
  const progress = setInterval(() => {
    const count = (kind: Outcome["kind"]) => records.filter((r) => r.outcome.kind === kind).length;
    log(
      `${elapsedS().toFixed(0)} s: sent ${records.length + inFlight}, in flight ${inFlight}, completed ${count("completed")}, 429 ${count("rejected")}, ` +
        `disconnected ${count("disconnected")}, errors ${count("error")}, RSS ${mib(total(rss.at(-1)))} MiB`,
    );
  }, 10_000);

  const client = async () => {
    for (;;) {
      const i = next;
      // Stop on the clock too, not only on the schedule: when every client is busy the schedule
      // falls behind, and late requests must not stretch the run past its duration.
      if (i >= planned || performance.now() - t0 >= durationMs) return;
      next++;
      const waitMs = i * intervalMs - (performance.now() - t0);
      if (waitMs > 0) await sleep(waitMs);
      let plan: DisconnectPlan | undefined;
      if (random() < cfg.disconnect) {
        disconnectsPlanned++;
        plan = random() < TIMED_DISCONNECT_SHARE ? { afterMs: random() * TIMED_DISCONNECT_MAX_MS } : { chunks: Math.floor(random() * cfg.maxTokens) };
      }
      const prompt = prompts[Math.floor(random() * prompts.length)]!;
      inFlight++;
      const startS = elapsedS();
      const outcome = await soakRequest(target, { prompt, maxTokens: cfg.maxTokens, seed: i }, plan);
      inFlight--;
      records.push({ outcome, lagMs: Math.max(0, -waitMs), startS });
    }
  };
  try {
    await Promise.all(Array.from({ length: cfg.clients }, client));
  } finally {
    clearInterval(sampler);
    clearInterval(progress);
  }
  return { records, planned, disconnectsPlanned, wallMs: performance.now() - t0, rss };
}

// ---- checks after the load ------------------------------------------------------------------

interface EngineModel {
  id: string;
  state: string;
  restarts: number;
  inflight: number;
  queued?: number;
  running?: number;
  slots?: Array<{ id: number; phase: string; cachedTokens: number }>;
}

const isIdle = (m: EngineModel) =>
  m.state === "ready" && m.restarts === 0 && m.inflight === 0 && m.queued === 0 && m.running === 0 && (m.slots ?? []).every((s) => s.phase === "idle");

/** Polls /v1/engine until every model is idle, or gives up after IDLE_WAIT_MS; returns the last view. */
async function waitIdle(baseURL: string): Promise<{ idle: boolean; models: EngineModel[]; waitedMs: number }> {
  const started = performance.now();
  let models: EngineModel[] = [];
  while (performance.now() - started < IDLE_WAIT_MS) {
    try {
      models = ((await (await fetch(`${baseURL}/v1/engine`, { signal: AbortSignal.timeout(5000) })).json()) as { models: EngineModel[] }).models;
      if (models.length > 0 && models.every(isIdle)) return { idle: true, models, waitedMs: performance.now() - started };
    } catch {
      // a slow answer is retried until the deadline
    }
    await sleep(250);
  }
  return { idle: false, models, waitedMs: performance.now() - started };
}

/** The few Prometheus series that corroborate the client's view (KV pages left in use, server-seen disconnects and failures). */
async function metricsLines(baseURL: string): Promise<string[]> {
  const text = await (await fetch(`${baseURL}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const wanted = /^edgellm_(kv_pages_used|kv_pages_total|sequences_busy|num_requests_running|num_requests_waiting|client_disconnects_total|requests_failed_total|requests_finished_total|preemptions_total|worker_restarts_total)\b/;
  return text.split("\n").filter((l) => wanted.test(l));
}

const PINO_LEVELS: Record<number, string> = { 40: "warn", 50: "error", 60: "fatal" };

/**
 * The server logs at warn and above: what it said, grouped by message (most frequent first), and
 * how many entries were errors. A request the server itself logs as an error failed, whatever
 * the client saw (e.g. one whose client had already hung up).
 */
function serverLog(logFile: string): { groups: Array<[string, number]>; errors: number } {
  const counts = new Map<string, number>();
  let errors = 0;
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let key = line.slice(0, 160);
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; code?: string; err?: { message?: string; status?: number } };
      if ((entry.level ?? 0) >= 50) errors++;
      const detail = [entry.err?.status, entry.err?.message ?? entry.code].filter((d) => d !== undefined).join(" ");
      key = `${PINO_LEVELS[entry.level ?? 0] ?? entry.level}: ${entry.msg ?? ""}${detail ? ` (${detail})` : ""}`;
    } catch {
      // not pino JSON (e.g. a native message on stderr): keep the raw line
    }
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return { groups: [...counts].sort((a, b) => b[1] - a[1]), errors };
}

interface Shutdown {
  code: number | null;
  signal: NodeJS.Signals | null;
  ms: number;
  leftovers: Array<{ pid: number; command: string }>;
}

/** SIGTERM to the server process only (as an orchestrator would), then its exit status and any process of its group still alive. */
async function terminate(server: RunningServer): Promise<Shutdown> {
  const { child } = server;
  const started = performance.now();
  // "close", not "exit": by then its last output has reached the log, which the report reads next.
  const closed = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("close", () => resolve());
  });
  child.kill("SIGTERM");
  await Promise.race([closed, sleep(SHUTDOWN_WAIT_MS)]);
  const ms = performance.now() - started;
  // The worker is the server's child: give it a moment to finish exiting after its parent.
  let leftovers = groupMembers(child.pid!);
  for (let i = 0; i < 20 && leftovers.length > 0; i++) {
    await sleep(250);
    leftovers = groupMembers(child.pid!);
  }
  return { code: child.exitCode, signal: child.signalCode, ms, leftovers };
}

// ---- report ---------------------------------------------------------------------------------

/**
 * The sample with the median total RSS in [from, to] seconds (the sample nearest to `from` when
 * the window holds none: very short runs). RSS of a Node process saws up and down with V8's
 * garbage collection and its returning of pages to the system, by ±100 MiB in the worker even
 * with the heap limited, so a single reading (or the lowest) lands anywhere on the sawtooth; the
 * median of a window spanning several cycles is the level a leak would raise.
 */
function medianIn(rss: RssSample[], from: number, to: number): RssSample | undefined {
  const inWindow = rss.filter((s) => s.t >= from && s.t <= to).sort((a, b) => total(a) - total(b));
  return inWindow.length > 0 ? inWindow[Math.floor((inWindow.length - 1) / 2)] : nearest(rss, from);
}

function nearest(rss: RssSample[], t: number): RssSample | undefined {
  return rss.reduce<RssSample | undefined>((best, s) => (!best || Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best), undefined);
}

const describe = (s: RssSample | undefined) => `${mib(total(s))} = server ${mib(s?.server ?? Number.NaN)} + worker ${mib(s?.worker ?? Number.NaN)}`;

async function main(): Promise<number> {
  // Synthesized here rather than by the server, so a first-time synthesis does not count against the start-up wait.
  const { path: model } = await resolveModel(opt.model!, path.join(ROOT, "models"));
  log(`model ${model}; building ${PROMPT_POOL} prompts of ${cfg.promptTokens} tokens`);
  const prompts = Array.from({ length: PROMPT_POOL }, (_, i) => textOfTokens(cfg.promptTokens, cfg.seed * 1000 + i));
  const port = await freePort();
  const emptyModelDir = path.join(outDir, "models");
  mkdirSync(emptyModelDir, { recursive: true });
  const args = [
    // What `npm start` runs: dist/ brought up to date with src/, then the server from it.
    "scripts/start.mjs",
    "--model", model, "--alias", MODEL_ALIAS, "--port", String(port), "--host", "127.0.0.1",
    "--parallel", String(cfg.parallel), "--threads", String(cfg.threads), "--log-level", "warn",
    "--set", `limits.maxConcurrentRequestsPerClient=${cfg.perClientLimit}`,
    // An empty model folder: the server serves the soak's model only, not every file in models/.
    "--set", `model.dir=${emptyModelDir}`,
  ];
  const logFile = path.join(outDir, "server.log");
  // The forked worker inherits the environment, so one NODE_OPTIONS limits both processes.
  const nodeOptions = [process.env.NODE_OPTIONS, cfg.heapMb > 0 ? `--max-old-space-size=${cfg.heapMb}` : ""].filter(Boolean).join(" ");
  const env = { ...process.env, NODE_OPTIONS: nodeOptions };
  const command = commandLine({ command: process.execPath, args, env });
  const loadBefore = machineLoad();
  log(`starting: ${command}`);
  const server = await startServer({ name: "edgellm", command: process.execPath, args, cwd: ROOT, env, logFile, port });
  running.add(server);
  try {
    return await soak(server, command, prompts, loadBefore);
  } finally {
    // Normally stopped already by soak(); this covers a soak that threw midway.
    if (running.has(server)) await server.stop();
  }
}

async function soak(server: RunningServer, command: string, prompts: string[], loadBefore: string): Promise<number> {
  const logFile = server.spec.logFile;
  log(`ready in ${(server.loadMs / 1000).toFixed(1)} s; ${cfg.clients} clients at ${cfg.rate} req/s for ${cfg.durationS} s`);

  const target: SoakTarget = { baseURL: server.baseURL, model: MODEL_ALIAS, timeoutMs: cfg.requestTimeoutMs };
  const run = await runLoad(target, server.child.pid!, prompts);
  const loadAfter = machineLoad();
  log("load done; checking that the engine is idle");
  const engine = await waitIdle(server.baseURL);
  const idleRss = treeRss(server.child.pid!);
  const metrics = await metricsLines(server.baseURL).catch((err: Error) => [`(metrics unavailable: ${err.message})`]);
  const probe = await soakRequest(target, { prompt: prompts[0]!, maxTokens: 8, seed: 0 });
  log("stopping the server with SIGTERM");
  const shutdown = await terminate(server);
  const peakRss = server.rss.peakBytes;
  await server.stop();
  running.delete(server);

  // ---- numbers
  const outcomes = run.records.map((r) => r.outcome);
  const completed = outcomes.filter((o): o is Extract<Outcome, { kind: "completed" }> => o.kind === "completed");
  const rejected = outcomes.filter((o) => o.kind === "rejected");
  const errors = outcomes.filter((o): o is Extract<Outcome, { kind: "error" }> => o.kind === "error");
  const disconnects = outcomes.filter((o): o is Extract<Outcome, { kind: "disconnected" }> => o.kind === "disconnected");
  const byPhase = (phase: DisconnectPhase) => disconnects.filter((d) => d.phase === phase).length;
  const errorKinds = new Map<string, number>();
  for (const e of errors) errorKinds.set(e.message, (errorKinds.get(e.message) ?? 0) + 1);
  const ttft = completed.map((c) => c.ttftMs).filter(Number.isFinite);
  // TTFT drift: p99 of the requests sent in the first and the last window after warm-up.
  const driftS = Math.min(TTFT_WINDOW_S, (cfg.durationS - cfg.warmup * cfg.durationS) / 3);
  const ttftIn = (from: number, to: number) =>
    run.records.flatMap((r) => (r.outcome.kind === "completed" && r.startS >= from && r.startS < to && Number.isFinite(r.outcome.ttftMs) ? [r.outcome.ttftMs] : []));
  const ttftFirst = ttftIn(cfg.warmup * cfg.durationS, cfg.warmup * cfg.durationS + driftS);
  const ttftLast = ttftIn(cfg.durationS - driftS, cfg.durationS);
  const ttftDrift = percentile(ttftLast, 99) / percentile(ttftFirst, 99);
  const e2e = completed.map((c) => c.e2eMs);
  const outTokens = completed.reduce((a, c) => a + c.completionTokens, 0);
  const finishKinds = new Map<string, number>();
  for (const c of completed) finishKinds.set(c.finishReason, (finishKinds.get(c.finishReason) ?? 0) + 1);
  const lags = run.records.map((r) => r.lagMs);

  const warmupS = cfg.warmup * cfg.durationS;
  // Each window is a third of the time after warm-up (at least 3 samples), so it spans several collections.
  const windowS = Math.max((3 * RSS_SAMPLE_MS) / 1000, (cfg.durationS - warmupS) / 3);
  const startWindow = [warmupS, warmupS + windowS] as const;
  const endWindow = [cfg.durationS - windowS, cfg.durationS] as const;
  const rssStart = medianIn(run.rss, ...startWindow);
  const rssEnd = medianIn(run.rss, ...endWindow);
  const growthPct = ((total(rssEnd) - total(rssStart)) / total(rssStart)) * 100;
  const timeline = Array.from({ length: 13 }, (_, k) => (k * cfg.durationS) / 12).map((t) => {
    const s = nearest(run.rss, t);
    return `${t.toFixed(0)}s ${mib(s?.server ?? Number.NaN)}+${mib(s?.worker ?? Number.NaN)}`;
  });

  const serverSaid = serverLog(logFile);

  // ---- verdict
  const failures: string[] = [];
  if (errors.length > 0) failures.push(`${errors.length} request${errors.length === 1 ? "" : "s"} failed with something other than a 429`);
  if (completed.length === 0) failures.push("no request completed");
  if (serverSaid.errors > 0) failures.push(`the server logged ${serverSaid.errors} error${serverSaid.errors === 1 ? "" : "s"}`);
  if (!engine.idle) failures.push(`engine not idle ${IDLE_WAIT_MS / 1000} s after the load`);
  if (probe.kind !== "completed") failures.push(`a normal request after the load did not complete (${probe.kind}${"message" in probe ? `: ${probe.message}` : ""})`);
  if (!(ttftDrift <= TTFT_DRIFT_LIMIT)) failures.push(`TTFT p99 of the last ${fmt(driftS, 0)} s is ${fmt(ttftDrift, 2)}x that of the first ${fmt(driftS, 0)} s after warm-up (limit ${TTFT_DRIFT_LIMIT}x)`);
  if (!(growthPct < RSS_GROWTH_LIMIT_PCT)) failures.push(`RSS grew ${fmt(growthPct, 1)}% after warm-up (limit ${RSS_GROWTH_LIMIT_PCT}%)`);
  if (shutdown.code !== 0) failures.push(`server exit after SIGTERM: code ${shutdown.code}, signal ${shutdown.signal}${shutdown.code === null && shutdown.signal === null ? ` (still running after ${SHUTDOWN_WAIT_MS / 1000} s)` : ""}`);
  if (shutdown.leftovers.length > 0) failures.push(`processes left after the server exited: ${shutdown.leftovers.map((p) => `${p.pid} ${p.command}`).join("; ")}`);

  const pct = (n: number) => (outcomes.length ? `${fmt((n / outcomes.length) * 100, 1)}%` : "-");
  const out = [
    "## edgellm soak",
    `server:   ${command}`,
    `load:     ${cfg.clients} clients, target ${cfg.rate} req/s for ${cfg.durationS} s (${run.planned} planned), prompt ${cfg.promptTokens} tokens, max_tokens ${cfg.maxTokens}, ` +
      `${cfg.parallel} slots, ${cfg.threads || "all"} threads, heap ${cfg.heapMb ? `${cfg.heapMb} MiB` : "V8 default"}, disconnect ${cfg.disconnect * 100}%, per-client limit ${cfg.perClientLimit || "off"}, seed ${cfg.seed}`,
    `machine:  before ${loadBefore}`,
    `          after  ${loadAfter}`,
    `          (the cores are shared: load above ${os.cpus().length} or CPU pressure well above 0% means the soak competed with other work)`,
    "",
    `requests sent       ${outcomes.length} in ${fmt(run.wallMs / 1000, 1)} s (achieved ${fmt(outcomes.length / cfg.durationS, 2)} req/s; start lag p50 ${fmt(percentile(lags, 50) / 1000, 2)} s, max ${fmt(Math.max(0, ...lags) / 1000, 2)} s)`,
    `completed           ${completed.length} (${pct(completed.length)}); finish reasons ${[...finishKinds].map(([k, v]) => `${k} ${v}`).join(", ") || "-"}`,
    `429 (backpressure)  ${rejected.length}`,
    `other errors        ${errors.length}${[...errorKinds].map(([m, n]) => `\n                      ${n} x ${m}`).join("")}`,
    `disconnects made    ${disconnects.length} of ${run.disconnectsPlanned} planned (the rest finished first): before headers ${byPhase("before headers")}, ` +
      `before first token ${byPhase("before first token")}, mid-stream ${byPhase("mid-stream")}`,
    `TTFT ms             p50 ${fmt(percentile(ttft, 50), 0)}  p99 ${fmt(percentile(ttft, 99), 0)}  (includes queueing for a slot)`,
    `TTFT p99 drift      first ${fmt(driftS, 0)} s after warm-up ${fmt(percentile(ttftFirst, 99), 0)} ms (${ttftFirst.length} requests), last ${fmt(driftS, 0)} s ${fmt(percentile(ttftLast, 99), 0)} ms (${ttftLast.length}): ${fmt(ttftDrift, 2)}x (limit ${TTFT_DRIFT_LIMIT}x)`,
    `end-to-end ms       p50 ${fmt(percentile(e2e, 50), 0)}  p99 ${fmt(percentile(e2e, 99), 0)}`,
    `output tok/s        ${fmt(outTokens / (run.wallMs / 1000), 1)} (${outTokens} tokens of completed requests / wall time)`,
    `RSS (server + worker, MiB)`,
    `  after warm-up     ${describe(rssStart)} (median sample of ${fmt(startWindow[0], 0)}-${fmt(startWindow[1], 0)} s)`,
    `  end of load       ${describe(rssEnd)} (median sample of ${fmt(endWindow[0], 0)}-${fmt(endWindow[1], 0)} s)`,
    `  growth            ${fmt(growthPct, 2)}% (limit < ${RSS_GROWTH_LIMIT_PCT}%)`,
    `  idle after load   ${describe({ t: Number.NaN, ...idleRss })}; peak ${mib(peakRss)} (sampled every 200 ms)`,
    `  timeline          server+worker at: ${timeline.join(", ")}`,
    `engine after load   ${engine.idle ? "idle" : "NOT IDLE"} after ${fmt(engine.waitedMs / 1000, 1)} s: ` +
      engine.models
        .map((m) => `${m.id} ${m.state}, restarts ${m.restarts}, inflight ${m.inflight}, queued ${m.queued ?? "?"}, running ${m.running ?? "?"}, slots [${(m.slots ?? []).map((s) => s.phase).join(", ")}]`)
        .join("; "),
    `metrics after load  ${metrics.join("\n                    ")}`,
    `request after load  ${probe.kind}${"message" in probe ? `: ${probe.message}` : ""}`,
    `shutdown (SIGTERM)  exit code ${shutdown.code}${shutdown.signal ? `, signal ${shutdown.signal}` : ""} after ${fmt(shutdown.ms / 1000, 1)} s; ` +
      `${shutdown.leftovers.length === 0 ? "no process left" : `${shutdown.leftovers.length} processes left`}`,
    `server log (warn+)  ${logFile}${serverSaid.groups.slice(0, 8).map(([m, n]) => `\n                      ${n} x ${m}`).join("") || " (empty)"}`,
    "",
    failures.length === 0 ? "PASS" : `FAIL\n${failures.map((f) => `  - ${f}`).join("\n")}`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
