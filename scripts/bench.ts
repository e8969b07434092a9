/**
 * npm run bench -- [options]
 *
 * Runs edgellm and llama.cpp's llama-server (built from the same bundled llama.cpp by
 * scripts/build-llama-server.sh) one after the other on the same model, threads, slots and
 * context, with the same streaming load, and prints side-by-side tables with ratios:
 * aggregate output tok/s, TTFT and inter-token latency percentiles at each concurrency, a
 * shared-prefix workload (long system prompt, several users, short questions) with edgellm's
 * prefix reuse on and off, peak RSS of each server's process tree, and llama-bench's pp/tg as the
 * single-stream ceiling. Loopback only; every process it starts is stopped before it exits.
 *
 * Options (defaults finish in a few minutes on 2 cores):
 *   --model <file.gguf>          default: the synthesized qwen3-0.6b q8_0 (made once under models/)
 *   --servers edgellm,llama-server
 *   --concurrency 1,4,8          client concurrency levels (a level listed twice runs twice, new prompts each time)
 *   --stagger-ms 0               client i of a level starts i x this after the first (0: all at once)
 *   --requests <n>               requests per level (default: max(4, 2 x C))
 *   --prompt-tokens 128          user prompt length (exact, Qwen3 tokenizer; the template adds ~10)
 *   --max-tokens 64              fixed max_tokens (ignore_eos for llama-server; edgellm's early stops are counted)
 *   --system-prompt-tokens 0     a system prompt shared by every request of the concurrency runs
 *   --slots 8 --ctx-size 1536 --threads 2    per server (llama-server gets -np slots -c slots x ctx-size)
 *   --flash-attn auto            llama-server -fa (node-llama-cpp passes "auto" too: on for the CPU)
 *   --prefix-tokens 1000 --prefix-users 8 --prefix-questions 2 --question-tokens 24 --prefix-max-tokens 32
 *   --bench-pp 512 --bench-tg 128 --bench-reps 3   llama-bench -p/-n/-r (run with -fa 0,1), tg also at
 *                                the C = 1 requests' mean prompt length (-d): the depth they decode at
 *   --kv-pool unified            unified: edgellm model.kvPool=unified and llama-server --kv-unified;
 *                                per-sequence: model.kvPool=per-sequence and --no-kv-unified
 *   --sequential                 run all of one server's workloads, stop it, then the other's (default:
 *                                both up, each workload on one then the other, order swapped each time)
 *   --no-shared-prefix --no-llama-bench --skip-warmup
 *   --no-prefix-off              skip the shared-prefix run with edgellm's prefix reuse off
 *   --prefix-off-set key=value   edgellm config of the "prefix reuse off" run, a separate edgellm server
 *                                (repeatable; default model.prefixReuse=false)
 *   --edgellm-set key=value      extra edgellm config (repeatable)
 *   --llama-server-args "..."    extra llama-server arguments
 *   --llama-bin <dir>            default vendor-build/llama.cpp/build/bin
 *   --out <dir>                  logs and results.json (default /tmp/edgellm-bench-<time>)
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { ensureSyntheticModel } from "../src/models/synthetic/index.js";
import { runLoad, streamChat, summarize, type RequestSpec, type Summary } from "./bench/load.js";
import { listArg, numberArg } from "./lib/args.js";
import { cpuPressure } from "./lib/proc.js";
import { textOfTokens } from "./lib/prompts.js";
import { commandLine, edgellmSpec, freePort, llamaServerSpec, startServer, stopAllOnExit, type RunningServer, type ServerSpec, type SideBySide } from "./lib/servers.js";
import { fmt, mib, percentile, ratio, table } from "./lib/stats.js";
import { handleHelp, logger, outputDir, ROOT } from "./lib/tool.js";

handleHelp(import.meta.url);

const MODEL_ALIAS = "bench";
type ServerName = "edgellm" | "llama-server";

const { values: opt } = parseArgs({
  options: {
    model: { type: "string" },
    servers: { type: "string", default: "edgellm,llama-server" },
    concurrency: { type: "string", default: "1,4,8" },
    requests: { type: "string" },
    "prompt-tokens": { type: "string", default: "128" },
    "max-tokens": { type: "string", default: "64" },
    "system-prompt-tokens": { type: "string", default: "0" },
    "stagger-ms": { type: "string", default: "0" },
    slots: { type: "string", default: "8" },
    "ctx-size": { type: "string", default: "1536" },
    threads: { type: "string", default: "2" },
    "flash-attn": { type: "string", default: "auto" },
    "prefix-tokens": { type: "string", default: "1000" },
    "prefix-users": { type: "string", default: "8" },
    "prefix-questions": { type: "string", default: "2" },
    "question-tokens": { type: "string", default: "24" },
    "prefix-max-tokens": { type: "string", default: "32" },
    "no-shared-prefix": { type: "boolean", default: false },
    "no-llama-bench": { type: "boolean", default: false },
    "no-prefix-off": { type: "boolean", default: false },
    "bench-pp": { type: "string", default: "512" },
    "bench-tg": { type: "string", default: "128" },
    "bench-reps": { type: "string", default: "3" },
    "skip-warmup": { type: "boolean", default: false },
    sequential: { type: "boolean", default: false },
    "kv-pool": { type: "string", default: "unified" },
    "prefix-off-set": { type: "string", multiple: true, default: ["model.prefixReuse=false"] },
    "edgellm-set": { type: "string", multiple: true, default: [] },
    "llama-server-args": { type: "string", default: "" },
    "llama-bin": { type: "string", default: path.join(ROOT, "vendor-build/llama.cpp/build/bin") },
    out: { type: "string" },
  },
  strict: true,
});

const int = (name: keyof typeof opt): number => numberArg(name, opt[name]);
const cfg = {
  servers: listArg<ServerName>("servers", opt.servers!, ["edgellm", "llama-server"]),
  levels: opt.concurrency!.split(",").map(Number),
  requests: opt.requests === undefined ? null : int("requests"),
  promptTokens: int("prompt-tokens"),
  maxTokens: int("max-tokens"),
  systemTokens: int("system-prompt-tokens"),
  staggerMs: int("stagger-ms"),
  slots: int("slots"),
  ctxSize: int("ctx-size"),
  threads: int("threads"),
  flashAttn: opt["flash-attn"]!,
  prefixTokens: int("prefix-tokens"),
  prefixUsers: int("prefix-users"),
  prefixQuestions: int("prefix-questions"),
  questionTokens: int("question-tokens"),
  prefixMaxTokens: int("prefix-max-tokens"),
  sharedPrefix: !opt["no-shared-prefix"],
  llamaBench: !opt["no-llama-bench"],
  prefixOff: !opt["no-prefix-off"],
  warmup: !opt["skip-warmup"],
};
const outDir = outputDir("bench", opt.out);
const llamaServerBin = path.join(opt["llama-bin"]!, "llama-server");
const llamaBenchBin = path.join(opt["llama-bin"]!, "llama-bench");

const log = logger("bench");

// ---- workloads --------------------------------------------------------------------------

const systemPrompt = cfg.systemTokens > 0 ? textOfTokens(cfg.systemTokens, 7) : "";
const requestsFor = (c: number) => cfg.requests ?? Math.max(4, 2 * c);

/**
 * The requests of the `repeat`-th run of level `c` (a level may be listed more than once to
 * repeat it): each repeat gets prompts of its own, so no server answers from a prompt cache
 * filled by the run before (llama-server keeps prompts in host memory beyond its slots).
 */
function concurrencyJobs(c: number, repeat: number): RequestSpec[][] {
  return Array.from({ length: requestsFor(c) }, (_, i) => {
    const seed = c * 1000 + i + repeat * 100_000;
    const messages: RequestSpec["messages"] = [];
    if (systemPrompt) messages.push({ role: "system", content: systemPrompt });
    messages.push({ role: "user", content: textOfTokens(cfg.promptTokens, seed) });
    return [{ messages, maxTokens: cfg.maxTokens, seed }];
  });
}

const sharedSystem = textOfTokens(cfg.prefixTokens, 424242);
/** One job per user, questions in sequence, all with the same system prompt. */
function sharedPrefixJobs(round: number): RequestSpec[][] {
  return Array.from({ length: cfg.prefixUsers }, (_, u) =>
    Array.from({ length: cfg.prefixQuestions }, (_, q) => {
      const seed = 90_000 + round * 1000 + u * 10 + q;
      return {
        messages: [
          { role: "system" as const, content: sharedSystem },
          { role: "user" as const, content: textOfTokens(cfg.questionTokens, seed) },
        ],
        maxTokens: cfg.prefixMaxTokens,
        seed,
      };
    }),
  );
}

// ---- servers -------------------------------------------------------------------------------

const kvPool = opt["kv-pool"];
if (kvPool !== "unified" && kvPool !== "per-sequence") throw new Error(`--kv-pool must be unified or per-sequence, not ${kvPool}`);

const running = new Set<RunningServer>();
stopAllOnExit(running);

const sideBySide = (model: string): SideBySide => ({ model, alias: MODEL_ALIAS, slots: cfg.slots, ctxSize: cfg.ctxSize, threads: cfg.threads, kvPool });

function benchEdgellmSpec(model: string, port: number, extraSet: string[], tag: string): ServerSpec {
  return edgellmSpec(sideBySide(model), port, path.join(outDir, `edgellm${tag}.log`), [...opt["edgellm-set"]!, ...extraSet], `edgellm${tag}`);
}

function benchLlamaServerSpec(model: string, port: number): ServerSpec {
  const extra = opt["llama-server-args"]!.split(/\s+/).filter(Boolean);
  return llamaServerSpec(sideBySide(model), llamaServerBin, port, path.join(outDir, "llama-server.log"), cfg.flashAttn, extra);
}

interface ServerResult {
  name: string;
  command: string;
  loadS: number;
  levels: Array<{ c: number; summary: Summary }>;
  prefix?: Summary;
  prefixOff?: Summary;
  peakRssBytes: number;
  hwmSumBytes: number;
}

async function withServer<T>(spec: ServerSpec, fn: (s: RunningServer) => Promise<T>): Promise<{ value: T; server: RunningServer }> {
  log(`starting ${spec.name}: ${commandLine(spec)}`);
  const server = await startServer(spec);
  running.add(server);
  log(`${spec.name} ready in ${(server.loadMs / 1000).toFixed(1)} s`);
  try {
    return { value: await fn(server), server };
  } finally {
    await server.stop();
    running.delete(server);
    log(`${spec.name} stopped; peak RSS ${mib(server.rss.peakBytes)} MiB`);
  }
}

async function warmup(baseURL: string): Promise<void> {
  if (!cfg.warmup) return;
  const r = await streamChat({ baseURL, model: MODEL_ALIAS }, { messages: [{ role: "user", content: textOfTokens(16, 1) }], maxTokens: 8, seed: 1 });
  if (!r.ok) throw new Error(`warm-up request failed: ${r.error}`);
}

/** "N failed", with the failures' errors, and the requests sent a second time. */
const failures = (s: Summary) =>
  `${s.failed} failed${s.errors.length ? ` (${s.errors.join("; ")})` : ""}` +
  (s.retried ? `, ${s.retried} retried after no response (${s.retryErrors.join("; ")})` : "");

function describe(s: Summary): string {
  return `${fmt(s.outTokS)} tok/s, TTFT p50 ${fmt(s.ttftP50, 0)} ms, ITL p50 ${fmt(s.itlP50, 0)} ms, ${failures(s)}, ${s.earlyStop} early stop`;
}

function specFor(name: ServerName, model: string, port: number): ServerSpec {
  return name === "edgellm" ? benchEdgellmSpec(model, port, [], "") : benchLlamaServerSpec(model, port);
}

function newResult(name: ServerName, spec: ServerSpec): ServerResult {
  return { name, command: commandLine(spec), loadS: 0, levels: [], peakRssBytes: 0, hwmSumBytes: 0 };
}

async function runLevel(name: ServerName, srv: RunningServer, result: ServerResult, c: number): Promise<void> {
  const repeat = result.levels.filter((l) => l.c === c).length;
  log(`${name}: C=${c}, ${requestsFor(c)} requests`);
  const summary = summarize(await runLoad({ baseURL: srv.baseURL, model: MODEL_ALIAS }, concurrencyJobs(c, repeat), c, cfg.staggerMs));
  result.levels.push({ c, summary });
  log(`${name}: C=${c}: ${describe(summary)}`);
}

async function runPrefix(name: ServerName, srv: RunningServer, result: ServerResult): Promise<void> {
  const lo = { baseURL: srv.baseURL, model: MODEL_ALIAS };
  log(`${name}: shared prefix (${cfg.prefixTokens}-token system prompt, ${cfg.prefixUsers} users x ${cfg.prefixQuestions} questions)`);
  result.prefix = summarize(await runLoad(lo, sharedPrefixJobs(1), cfg.prefixUsers));
  log(`${name}: shared prefix: ${describe(result.prefix)}, cached ${result.prefix.cachedTokens} of ${result.prefix.promptTokens} prompt tokens`);
}

/** A separate edgellm started with prefix reuse disabled by config (--prefix-off-set). */
async function runPrefixOffServer(model: string, result: ServerResult): Promise<void> {
  const offSpec = benchEdgellmSpec(model, await freePort(), opt["prefix-off-set"]!, "-prefix-off");
  await withServer(offSpec, async (srv) => {
    await warmup(srv.baseURL);
    result.prefixOff = summarize(await runLoad({ baseURL: srv.baseURL, model: MODEL_ALIAS }, sharedPrefixJobs(1), cfg.prefixUsers));
    log(`edgellm: shared prefix, reuse off (${opt["prefix-off-set"]!.join(" ")}): ${describe(result.prefixOff)}`);
  });
}

/** One server at a time: start it, run every workload, stop it. */
async function benchSequential(model: string): Promise<ServerResult[]> {
  const results: ServerResult[] = [];
  for (const name of cfg.servers) {
    const spec = specFor(name, model, await freePort());
    const result = newResult(name, spec);
    const { server } = await withServer(spec, async (srv) => {
      result.loadS = srv.loadMs / 1000;
      await warmup(srv.baseURL);
      for (const c of cfg.levels) await runLevel(name, srv, result, c);
      if (cfg.sharedPrefix) await runPrefix(name, srv, result);
    });
    result.peakRssBytes = server.rss.peakBytes;
    result.hwmSumBytes = server.rss.hwmSumBytes;
    if (name === "edgellm" && cfg.sharedPrefix && cfg.prefixOff) await runPrefixOffServer(model, result);
    results.push(result);
  }
  return results;
}

/**
 * Both servers up (started one after the other), each workload run on one then the other,
 * the order swapped every workload: on a machine shared with other work, load that comes and
 * goes then hits both sides alike instead of whichever server happened to be running.
 */
async function benchInterleaved(model: string): Promise<ServerResult[]> {
  const up: Array<{ name: ServerName; srv: RunningServer; result: ServerResult }> = [];
  try {
    for (const name of cfg.servers) {
      const spec = specFor(name, model, await freePort());
      log(`starting ${spec.name}: ${commandLine(spec)}`);
      const srv = await startServer(spec);
      running.add(srv);
      log(`${spec.name} ready in ${(srv.loadMs / 1000).toFixed(1)} s`);
      const result = newResult(name, spec);
      result.loadS = srv.loadMs / 1000;
      up.push({ name, srv, result });
      await warmup(srv.baseURL);
    }
    let turn = 0;
    const inTurn = () => (turn++ % 2 === 0 ? up : [...up].reverse());
    for (const c of cfg.levels) for (const u of inTurn()) await runLevel(u.name, u.srv, u.result, c);
    if (cfg.sharedPrefix) for (const u of inTurn()) await runPrefix(u.name, u.srv, u.result);
  } finally {
    for (const u of up) {
      await u.srv.stop();
      running.delete(u.srv);
      u.result.peakRssBytes = u.srv.rss.peakBytes;
      u.result.hwmSumBytes = u.srv.rss.hwmSumBytes;
      log(`${u.srv.spec.name} stopped; peak RSS ${mib(u.srv.rss.peakBytes)} MiB`);
    }
  }
  const e = up.find((u) => u.name === "edgellm");
  if (e && cfg.sharedPrefix && cfg.prefixOff) await runPrefixOffServer(model, e.result);
  return up.map((u) => u.result);
}

// ---- llama-bench ---------------------------------------------------------------------------

interface LlamaBenchRow {
  test: string;
  fa: string;
  tokS: number;
  stddev: number;
}

/**
 * `depth`: tg is also measured after that many tokens in the context (-d), as the servers' C = 1
 * requests decode after their prompts: attention over them makes each token dearer.
 */
function runLlamaBench(model: string, depth: number): { rows: LlamaBenchRow[]; command: string; depth: number } {
  const depths = depth > 0 ? ["-d", `0,${depth}`] : [];
  const args = ["-m", model, "-t", String(cfg.threads), "-p", opt["bench-pp"]!, "-n", opt["bench-tg"]!, "-r", opt["bench-reps"]!, "-fa", "0,1", ...depths, "-o", "json"];
  const command = commandLine({ command: llamaBenchBin, args });
  log(`llama-bench: ${command}`);
  const res = spawnSync(llamaBenchBin, args, { encoding: "utf8", maxBuffer: 16 << 20 });
  writeFileSync(path.join(outDir, "llama-bench.log"), `${res.stderr}\n${res.stdout}`);
  if (res.status !== 0) throw new Error(`llama-bench failed (${res.status}); see ${outDir}/llama-bench.log`);
  const json = JSON.parse(res.stdout) as Array<{ n_prompt: number; n_gen: number; n_depth?: number; avg_ts: number; stddev_ts: number; flash_attn?: boolean | number | string }>;
  const rows = json.map((r) => ({
    test: `${r.n_prompt > 0 ? `pp${r.n_prompt}` : `tg${r.n_gen}`}${r.n_depth ? ` @ d${r.n_depth}` : ""}`,
    fa: String(r.flash_attn === true || r.flash_attn === 1 || r.flash_attn === "enabled" || r.flash_attn === "on" ? "on" : "off"),
    tokS: r.avg_ts,
    stddev: r.stddev_ts,
  }));
  return { rows, command, depth };
}

// ---- report --------------------------------------------------------------------------------

function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const [l1, l5] = os.loadavg();
  let tag = "";
  try {
    tag = JSON.parse(readFileSync(path.join(ROOT, "node_modules/node-llama-cpp/llama/llama.cpp.info.json"), "utf8")).tag as string;
  } catch {
    tag = "?";
  }
  const nlc = JSON.parse(readFileSync(path.join(ROOT, "node_modules/node-llama-cpp/package.json"), "utf8")).version as string;
  // share of time some runnable task waited for a CPU: other work on the machine
  const psi = cpuPressure();
  const pressure = psi ? `, CPU pressure ${psi.avg60.toFixed(2)}% (60 s)` : "";
  return `${cpu}, ${os.cpus().length} cores, load average ${l1!.toFixed(1)}/${l5!.toFixed(1)} (1/5 min)${pressure}; node ${process.version}, node-llama-cpp ${nlc}, llama.cpp ${tag}`;
}

function report(results: ServerResult[], bench: ReturnType<typeof runLlamaBench> | null, model: string, startLoad: string): string {
  const e = results.find((r) => r.name === "edgellm");
  const l = results.find((r) => r.name === "llama-server");
  const out: string[] = [];
  const argv = process.argv.slice(2);
  out.push(`command: npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`);
  out.push(`model: ${path.relative(ROOT, model)} (${mib(Number(execFileSync("stat", ["-c", "%s", model], { encoding: "utf8" })))} MiB)`);
  out.push(`machine at start: ${startLoad}`);
  out.push(`machine at end:   ${machineLine()}`);
  out.push(
    `workload: ${cfg.slots} slots x ${cfg.ctxSize} ctx, ${cfg.threads} threads, prompt ${cfg.promptTokens} tokens` +
      `${cfg.systemTokens ? ` + shared system ${cfg.systemTokens}` : ""}, max_tokens ${cfg.maxTokens}, N = ${cfg.requests ?? "max(4, 2C)"} per level, streaming, ` +
      `${cfg.staggerMs ? `clients started ${cfg.staggerMs} ms apart, ` : ""}` +
      (opt.sequential ? "one server at a time" : "both servers up, workloads alternated between them"),
  );
  for (const r of results) out.push(`${r.name}: ${r.command}`);
  out.push("");

  const header = ["C", "metric", "edgellm", "llama-server", "edgellm / llama-server"];
  const rows: string[][] = [];
  const notes: string[] = [];
  // Each server ran the levels in cfg.levels' order, a repeated level once per listing.
  for (const [i, c] of cfg.levels.entries()) {
    const es = e?.levels[i]?.summary;
    const ls = l?.levels[i]?.summary;
    const metric = (label: string, pick: (s: Summary) => number, digits: number, better: "higher" | "lower") => {
      const a = es ? pick(es) : Number.NaN;
      const b = ls ? pick(ls) : Number.NaN;
      rows.push([String(c), `${label} (${better} is better)`, fmt(a, digits), fmt(b, digits), ratio(a, b)]);
    };
    metric("output tok/s", (s) => s.outTokS, 1, "higher");
    metric("TTFT p50 ms", (s) => s.ttftP50, 0, "lower");
    metric("TTFT p99 ms", (s) => s.ttftP99, 0, "lower");
    metric("ITL p50 ms", (s) => s.itlP50, 1, "lower");
    metric("ITL p99 ms", (s) => s.itlP99, 1, "lower");
    metric("decode tok/s per request", (s) => s.decodeTokS, 1, "higher");
    const note = (n: string, s: Summary | undefined) =>
      s
        ? `${n}: ${s.requests} req, ${s.outputTokens} out tok, ${failures(s)}, ` +
          `${s.earlyStop} stopped before max_tokens, wall ${fmt(s.wallS, 1)} s`
        : "";
    notes.push(`C=${c}: ${[note("edgellm", es), note("llama-server", ls)].filter(Boolean).join("; ")}`);
  }
  out.push("Concurrency runs");
  out.push(table(header, rows, 2));
  out.push(...notes);
  out.push("");
  const repeated = [...new Set(cfg.levels)].filter((c) => cfg.levels.filter((x) => x === c).length > 1);
  if (repeated.length > 0 && e && l) {
    // One run is not enough on a shared machine: a level listed more than once gets the median
    // of its runs' ratios and their range.
    const spread = (c: number, pick: (s: Summary) => number) => {
      const ratios = cfg.levels.flatMap((x, i) => {
        const a = e.levels[i]?.summary;
        const b = l.levels[i]?.summary;
        return x === c && a && b ? [pick(a) / pick(b)] : [];
      });
      return `${fmt(percentile(ratios, 50), 2)}x (${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)})`;
    };
    out.push("Repeated levels: median edgellm / llama-server ratio of the runs (range)");
    out.push(
      table(
        ["C", "runs", "output tok/s", "TTFT p50", "ITL p99"],
        repeated.map((c) => [
          String(c),
          String(cfg.levels.filter((x) => x === c).length),
          spread(c, (s) => s.outTokS),
          spread(c, (s) => s.ttftP50),
          spread(c, (s) => s.itlP99),
        ]),
      ),
    );
    out.push("");
  }

  if (cfg.sharedPrefix) {
    const prow = (label: string, s: Summary | undefined) =>
      s
        ? [label, fmt(s.ttftP50, 0), fmt(s.ttftP99, 0), fmt(s.outTokS, 1), fmt(s.wallS, 1), `${s.cachedTokens}/${s.promptTokens}`, `${s.failed}`]
        : [label, "-", "-", "-", "-", "-", "-"];
    out.push(
      `Shared prefix: ${cfg.prefixTokens}-token system prompt, ${cfg.prefixUsers} concurrent users x ${cfg.prefixQuestions} questions of ${cfg.questionTokens} tokens, max_tokens ${cfg.prefixMaxTokens}`,
    );
    out.push(
      table(
        ["run", "TTFT p50 ms", "TTFT p99 ms", "out tok/s", "wall s", "cached/prompt tok", "failed"],
        [
          prow("edgellm, prefix reuse on", e?.prefix),
          prow(`edgellm, prefix reuse off (${opt["prefix-off-set"]!.join(" ")})`, e?.prefixOff),
          prow("llama-server (cache_prompt, default)", l?.prefix),
        ],
      ),
    );
    out.push(
      `TTFT p50 edgellm on/off: ${ratio(e?.prefix?.ttftP50 ?? NaN, e?.prefixOff?.ttftP50 ?? NaN)} (target <= 0.50); ` +
        `edgellm on / llama-server: ${ratio(e?.prefix?.ttftP50 ?? NaN, l?.prefix?.ttftP50 ?? NaN)}`,
    );
    out.push("");
  }

  out.push("Peak RSS of each server's process tree (MiB; sampled every 200 ms / sum of per-process VmHWM)");
  out.push(
    table(
      ["server", "peak RSS", "sum VmHWM", "load s"],
      results.map((r) => [r.name, mib(r.peakRssBytes), mib(r.hwmSumBytes), fmt(r.loadS, 1)]),
    ),
  );
  out.push("");

  if (bench) {
    out.push(`Single stream: ${bench.command}`);
    const tgAt = (fa: string, depth: number) =>
      bench.rows.find((r) => r.test === `tg${opt["bench-tg"]}${depth ? ` @ d${depth}` : ""}` && r.fa === fa)?.tokS ?? Number.NaN;
    const matchedFa = cfg.flashAttn === "off" ? "off" : "on";
    // A repeated C = 1 level (`--concurrency 1,1,1`): the median of its runs.
    const single = (r: ServerResult | undefined) => {
      const runs = r?.levels.filter((x) => x.c === 1).map((x) => x.summary.decodeTokS) ?? [];
      return runs.length > 0 ? percentile(runs, 50) : Number.NaN;
    };
    const e1 = single(e);
    const l1 = single(l);
    const runs = e?.levels.filter((x) => x.c === 1).length ?? 0;
    const atDepth = bench.depth > 0 ? [`vs tg @ d${bench.depth} (fa ${matchedFa})`] : [];
    const vs = (v: number) => [ratio(v, tgAt(matchedFa, 0)), ...(bench.depth > 0 ? [ratio(v, tgAt(matchedFa, bench.depth))] : [])];
    out.push(
      table(
        ["measure", "tok/s", `vs tg (fa ${matchedFa})`, ...atDepth],
        [
          ...bench.rows.map((r) => [`llama-bench ${r.test} fa ${r.fa}`, `${fmt(r.tokS, 1)} ± ${fmt(r.stddev, 1)}`, "", ...atDepth.map(() => "")]),
          [`edgellm C=1 decode (1000 / TPOT${runs > 1 ? `, median of ${runs} runs` : ""})`, fmt(e1, 1), ...vs(e1)],
          [`llama-server C=1 decode (1000 / TPOT${runs > 1 ? `, median of ${runs} runs` : ""})`, fmt(l1, 1), ...vs(l1)],
        ],
      ),
    );
  }
  return out.join("\n");
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const model = opt.model
    ? path.resolve(opt.model)
    : await ensureSyntheticModel({ kind: "preset", preset: "qwen3-0.6b", quant: "q8_0" }, path.join(ROOT, "models"));
  if (cfg.servers.includes("llama-server") && !existsSync(llamaServerBin)) {
    throw new Error(`${llamaServerBin} not found: run \`npm run build:llama-server\` first (LLAMA_CPU=host builds only this CPU's variant, in less than half the time)`);
  }
  const startLoad = machineLine();
  log(`model ${model}; logs in ${outDir}`);
  const results = opt.sequential ? await benchSequential(model) : await benchInterleaved(model);
  let bench: ReturnType<typeof runLlamaBench> | null = null;
  if (cfg.llamaBench && existsSync(llamaBenchBin)) {
    // The depth the single-stream requests decode at: their mean prompt length.
    const single = results.map((r) => r.levels.find((x) => x.c === 1)?.summary).find((x) => x && x.requests > x.failed);
    bench = runLlamaBench(model, single ? Math.round(single.promptTokens / (single.requests - single.failed)) : 0);
  }
  else if (cfg.llamaBench) log(`llama-bench not found at ${llamaBenchBin}; skipped`);
  const text = report(results, bench, model, startLoad);
  writeFileSync(path.join(outDir, "results.json"), JSON.stringify({ cfg, results, bench }, null, 2));
  writeFileSync(path.join(outDir, "report.md"), `${text}\n`);
  process.stdout.write(`${text}\n\n(report and logs: ${outDir})\n`);
}

main().catch((err) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
