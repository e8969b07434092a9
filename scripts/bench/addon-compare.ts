/**
 * Compares the node-llama-cpp addon built from source (`npm run build:addon`, with the kvUnified
 * patch) with the prebuilt one on the same model: prefill and decode speed, like llama-bench's
 * pp/tg, each build in its own child process, alternating to spread out background load. Then
 * checks that both builds answer right when one batch holds several prompts (a scripted q8_0
 * model's next token, batched against alone: ggml's AMX kernels got this wrong), and checks the
 * unified KV pool on the local build: llama.cpp logs kv_unified = true, 8 sequences of 1k tokens
 * fit in an 8k pool, one sequence grows past its share, and a copied prefix shares cells instead
 * of copying them.
 *
 *   npx tsx scripts/bench/addon-compare.ts [--model <file.gguf>] [--profile portable|native]
 *       [--threads 2] [--prompt 512] [--gen 128] [--rounds 3] [--no-unified-check] [--out <dir>]
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type Token } from "node-llama-cpp";
import { ADDON_PROFILES, type AddonProfile } from "../../src/engine/addon-builds.js";
import { ensureSyntheticModel } from "../../src/models/synthetic/index.js";
import { numberArg } from "../lib/args.js";
import { rng } from "../lib/prompts.js";
import { fmt, ratio, table } from "../lib/stats.js";
import { handleHelp, ROOT } from "../lib/tool.js";

handleHelp(import.meta.url);

type Build = "prebuilt" | "local";

const { values: opt } = parseArgs({
  options: {
    model: { type: "string" },
    profile: { type: "string", default: "portable" },
    threads: { type: "string", default: "2" },
    prompt: { type: "string", default: "512" },
    gen: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    "no-unified-check": { type: "boolean", default: false },
    out: { type: "string", default: path.join(os.tmpdir(), "edgellm-addon-compare") },
    // internal: run one measurement in this process
    child: { type: "string" },
    "log-file": { type: "string" },
  },
  strict: true,
});
if (!Object.hasOwn(ADDON_PROFILES, opt.profile!)) throw new Error(`unknown --profile ${opt.profile}`);
/**
 * The CMake options scripts/build-addon.ts builds this profile with. node-llama-cpp names the
 * local build folder after them, so loading that build needs exactly the same set.
 */
const ADDON_CMAKE_OPTIONS: Record<string, string> = { ...ADDON_PROFILES[opt.profile as AddonProfile] };
const threads = numberArg("threads", opt.threads);
const promptLen = numberArg("prompt", opt.prompt, { min: 1 });
const genLen = numberArg("gen", opt.gen, { min: 1 });

async function loadLlama(build: Build, logFile: string): Promise<Llama> {
  const logger = (level: LlamaLogLevel, message: string) => appendFileSync(logFile, `[${level}] ${message}${message.endsWith("\n") ? "" : "\n"}`);
  const llama =
    build === "local"
      ? await getLlama({ gpu: false, build: "never", cmakeOptions: ADDON_CMAKE_OPTIONS, usePrebuiltBinaries: false, logLevel: LlamaLogLevel.info, logger })
      : await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.info, logger });
  const want = build === "local" ? "localBuild" : "prebuilt";
  if (llama.buildType !== want) throw new Error(`asked for the ${build} build, got ${llama.buildType}`);
  return llama;
}

function randomTokens(n: number, seed: number): Token[] {
  const next = rng(seed);
  // ordinary BPE tokens of the Qwen3 vocabulary (not special ones)
  return Array.from({ length: n }, () => (1000 + Math.floor(next() * 100_000)) as Token);
}

interface SpeedResult {
  build: Build;
  /** The ggml CPU backend library this process mapped (which variant ggml picked). */
  cpuBackend: string;
  prefillTokS: number[];
  decodeTokS: number[];
}

async function measureSpeed(build: Build, modelPath: string, logFile: string): Promise<SpeedResult> {
  const llama = await loadLlama(build, logFile);
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: 1, contextSize: promptLen + genLen + 256, batchSize: 512, threads });
  const seq = context.getSequence({ contextShift: { size: 0 } });
  const prefillTokS: number[] = [];
  const decodeTokS: number[] = [];
  // one unmeasured round first, like llama-bench's warm-up
  for (let round = -1; round < Number(opt.rounds); round++) {
    await seq.clearHistory();
    const prompt = randomTokens(promptLen, 100 + round);
    let t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt);
    const prefillMs = performance.now() - t;
    let n = 0;
    t = performance.now();
    for await (const _token of seq.evaluate([prompt[0]!], { temperature: 0 })) {
      if (++n >= genLen) break;
    }
    const decodeMs = performance.now() - t;
    if (round >= 0) {
      prefillTokS.push((promptLen / prefillMs) * 1000);
      decodeTokS.push((n / decodeMs) * 1000);
    }
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  const { readFileSync } = await import("node:fs");
  const maps = readFileSync("/proc/self/maps", "utf8");
  const cpuBackend = [...new Set([...maps.matchAll(/\S*libggml-cpu[^\s]*\.so\S*/g)].map((m) => path.relative(ROOT, m[0])))].join(", ");
  return { build, cpuBackend, prefillTokS, decodeTokS };
}

/** A scripted model's script: whatever the prompt, greedy decoding must start with it. */
const BATCH_SCRIPT = "Paged caches share what they can.";
const BATCH_TRIALS = 20;

interface BatchResult {
  build: Build;
  /** Next tokens that differ from the script, of `runs` (two prompts per trial, both in one batch). */
  wrong: number;
  runs: number;
}

/**
 * Two prompts of 80-300 tokens evaluated in one batch, then each sequence's greedy next tokens
 * compared with the script. The scripted model answers the same whatever the prompt, so any
 * difference is a wrong result of the batched decode.
 */
async function batchCheck(build: Build, logFile: string): Promise<BatchResult> {
  const modelPath = await ensureSyntheticModel({ kind: "scripted", segments: [BATCH_SCRIPT], loop: true }, path.join(ROOT, "models"));
  const llama = await loadLlama(build, logFile);
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: 2, contextSize: 1024, batchSize: 512, threads });
  const seqs = [0, 1].map(() => context.getSequence({ contextShift: { size: 0 } }));
  const NEXT_TOKENS = 3;
  const prompt = (words: number) => model.tokenize(`<|im_start|>user\n${"w ".repeat(words)}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`, true);
  const next = async (seq: LlamaContextSequence, tokens: Token[]) => {
    const out: Token[] = [];
    for await (const t of seq.evaluate(tokens, { temperature: 0 })) if (out.push(t) >= NEXT_TOKENS) break;
    return model.detokenize(out);
  };
  const sizes: Array<[number, number]> = [[100, 100], [70, 70], [100, 40], [140, 10], [300, 1]];
  let wrong = 0;
  let runs = 0;
  for (let trial = 0; trial < BATCH_TRIALS; trial++) {
    const [a, b] = sizes[trial % sizes.length]!;
    await Promise.all(seqs.map((s) => s.clearHistory()));
    // queued in the same tick: node-llama-cpp packs both prompts into one decode
    const outs = await Promise.all([next(seqs[0]!, prompt(a)), next(seqs[1]!, prompt(b))]);
    runs += outs.length;
    // The model may spell the script with other tokens than tokenize() would: compare text.
    wrong += outs.filter((text) => text === "" || !BATCH_SCRIPT.startsWith(text)).length;
  }
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { build, wrong, runs };
}

interface UnifiedResult {
  contextSize: number;
  kvUnified: boolean;
  logKvUnified: string | null;
  logNCtxSeq: string | null;
  eightByOneK: { ok: boolean; ms: number; error?: string };
  growth: { ok: boolean; tokens: number; error?: string };
  sharedPrefix: { ok: boolean; copyMs: number; prefillMs: number; dirtyTargetSameToken?: boolean; error?: string };
  prebuiltRefuses: string;
  /** The same 1000-token prefix copy with the prebuilt addon: per-sequence pools, so a full stream copy. */
  prebuiltCopy: { ok: boolean; copyMs: number; error?: string };
  /** ms per lockstep decode round of 8 sequences holding 256 tokens each, local build. */
  decodeRound8: { unified: number; perSequence: number };
}

async function evalAll(seqs: LlamaContextSequence[], tokens: (i: number) => Token[]): Promise<void> {
  // queued in the same tick: node-llama-cpp packs them into shared decodes
  await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(tokens(i))));
}

async function unifiedCheck(modelPath: string, logFile: string): Promise<UnifiedResult> {
  const { readFileSync } = await import("node:fs");
  const llama = await loadLlama("local", logFile);
  const model = await llama.loadModel({ modelPath });
  const marker = () => readFileSync(logFile, "utf8").length;

  // 8 sequences x 1024 tokens of pool = 8192 cells, shared
  const logStart = marker();
  const ctx: LlamaContext = await model.createContext({ sequences: 8, contextSize: 1024, batchSize: 512, threads, kvUnified: true });
  const log = readFileSync(logFile, "utf8").slice(logStart);
  const result: UnifiedResult = {
    contextSize: ctx.contextSize,
    kvUnified: ctx.kvUnified,
    logKvUnified: /kv_unified\s*=\s*\w+/.exec(log)?.[0] ?? null,
    logNCtxSeq: /n_ctx_seq\s*=\s*\d+/.exec(log)?.[0] ?? null,
    eightByOneK: { ok: false, ms: 0 },
    growth: { ok: false, tokens: 0 },
    sharedPrefix: { ok: false, copyMs: 0, prefillMs: 0 },
    prebuiltRefuses: "",
    prebuiltCopy: { ok: false, copyMs: 0 },
    decodeRound8: { unified: Number.NaN, perSequence: Number.NaN },
  };
  const seqs = Array.from({ length: 8 }, () => ctx.getSequence({ contextShift: { size: 0 } }));
  try {
    const t = performance.now();
    await evalAll(seqs, (i) => randomTokens(1000, 200 + i));
    result.eightByOneK = { ok: seqs.every((s) => s.nextTokenIndex === 1000), ms: performance.now() - t };
  } catch (err) {
    result.eightByOneK.error = String(err);
  }
  // one sequence grows to 4000 tokens once the others are gone: more than its 1024 share
  try {
    for (const s of seqs) await s.clearHistory();
    await seqs[0]!.evaluateWithoutGeneratingNewTokens(randomTokens(4000, 300));
    result.growth = { ok: seqs[0]!.nextTokenIndex === 4000, tokens: seqs[0]!.nextTokenIndex };
  } catch (err) {
    result.growth.error = String(err);
  }
  for (const s of seqs) s.dispose();
  await ctx.dispose();

  // prefix sharing: pool of 2048 cells; a 1000-token prefix copied into 7 more sequences, each then
  // adding 100 tokens, needs 1000 + 8 x 100 = 1800 cells if the prefix cells are shared, 8800 if copied
  const small = await model.createContext({ sequences: 8, contextSize: 256, batchSize: 512, threads, kvUnified: true });
  const s2 = Array.from({ length: 8 }, () => small.getSequence({ contextShift: { size: 0 } }));
  try {
    let t = performance.now();
    const prefix = randomTokens(1000, 400);
    await s2[0]!.evaluateWithoutGeneratingNewTokens(prefix);
    const prefillMs = performance.now() - t;
    // sequence 1 holds tokens of its own before the copy: they must not survive beside the copied cells
    await s2[1]!.evaluateWithoutGeneratingNewTokens(randomTokens(50, 450));
    t = performance.now();
    type Copyable = { _copyStateFromOtherSequence(other: LlamaContextSequence, upTo: number): Promise<boolean> };
    for (const s of s2.slice(1)) {
      const ok = await (s as unknown as Copyable)._copyStateFromOtherSequence(s2[0]!, prefix.length);
      if (!ok) throw new Error("copy reported failure");
    }
    const copyMs = performance.now() - t;
    // sequences 1 (was dirty) and 2 (was empty) get the same continuation: same greedy next token
    await evalAll(s2, (i) => randomTokens(100, 500 + (i === 2 ? 1 : i)));
    const ok = s2.every((s) => s.nextTokenIndex === 1100);
    const next = await Promise.all([1, 2].map(async (i) => (await s2[i]!.evaluate(randomTokens(1, 800), { temperature: 0 })[Symbol.asyncIterator]().next()).value));
    result.sharedPrefix = { ok, copyMs, prefillMs, dirtyTargetSameToken: next[0] === next[1] };
  } catch (err) {
    result.sharedPrefix.error = String(err);
  }
  await small.dispose();
  for (const unified of [true, false]) {
    const c = await model.createContext({ sequences: 8, contextSize: 1024, batchSize: 512, threads, kvUnified: unified });
    const ss = Array.from({ length: 8 }, () => c.getSequence({ contextShift: { size: 0 } }));
    await evalAll(ss, (i) => randomTokens(256, 600 + i));
    const gens = ss.map((s, i) => s.evaluate(randomTokens(1, 700 + i), { temperature: 0 })[Symbol.asyncIterator]());
    await Promise.all(gens.map((g) => g.next())); // first round, not timed
    const t = performance.now();
    const rounds = 16;
    for (let r = 0; r < rounds; r++) await Promise.all(gens.map((g) => g.next()));
    const ms = (performance.now() - t) / rounds;
    await Promise.all(gens.map((g) => g.return(undefined)));
    if (unified) result.decodeRound8.unified = ms;
    else result.decodeRound8.perSequence = ms;
    await c.dispose();
  }
  await model.dispose();
  await llama.dispose();

  // the prebuilt addon cannot do it, and says so
  const pre = await loadLlama("prebuilt", logFile);
  const preModel = await pre.loadModel({ modelPath });
  try {
    const c = await preModel.createContext({ sequences: 2, contextSize: 256, kvUnified: true });
    result.prebuiltRefuses = `no error (kvUnified=${c.kvUnified})`;
    await c.dispose();
  } catch (err) {
    result.prebuiltRefuses = (err as Error).message;
  }
  const pc = await preModel.createContext({ sequences: 8, contextSize: 1536, batchSize: 512, threads });
  try {
    const [a, b] = [pc.getSequence({ contextShift: { size: 0 } }), pc.getSequence({ contextShift: { size: 0 } })];
    await a.evaluateWithoutGeneratingNewTokens(randomTokens(1000, 400));
    const t = performance.now();
    type Copyable = { _copyStateFromOtherSequence(other: LlamaContextSequence, upTo: number): Promise<boolean> };
    const ok = await (b as unknown as Copyable)._copyStateFromOtherSequence(a, 1000);
    const copyMs = performance.now() - t;
    await b.evaluateWithoutGeneratingNewTokens(randomTokens(24, 401));
    result.prebuiltCopy = { ok: ok && b.nextTokenIndex === 1024, copyMs };
  } catch (err) {
    result.prebuiltCopy.error = String(err);
  }
  await pc.dispose();
  await preModel.dispose();
  await pre.dispose();
  return result;
}

function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`child ${args.join(" ")} exited ${code}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const modelPath = opt.model
    ? path.resolve(opt.model)
    : await ensureSyntheticModel({ kind: "preset", preset: "qwen3-0.6b", quant: "q8_0" }, path.join(ROOT, "models"));
  if (opt.child) {
    const logFile = opt["log-file"]!;
    const [kind, build] = opt.child.split(":") as [string, Build];
    const value =
      kind === "unified" ? await unifiedCheck(modelPath, logFile) : kind === "batch" ? await batchCheck(build, logFile) : await measureSpeed(kind as Build, modelPath, logFile);
    process.stdout.write(JSON.stringify(value));
    return;
  }
  mkdirSync(opt.out!, { recursive: true });
  const common = ["--model", modelPath, "--profile", opt.profile!, "--threads", String(threads), "--prompt", String(promptLen), "--gen", String(genLen), "--rounds", opt.rounds!];
  const speeds: Record<Build, SpeedResult[]> = { prebuilt: [], local: [] };
  for (const build of ["prebuilt", "local", "prebuilt", "local"] as Build[]) {
    const logFile = path.join(opt.out!, `${build}.log`);
    process.stderr.write(`[addon-compare] ${build} ...\n`);
    speeds[build].push(JSON.parse(await runChild([...common, "--child", build, "--log-file", logFile])) as SpeedResult);
  }
  const agg = (b: Build, k: "prefillTokS" | "decodeTokS") => median(speeds[b].flatMap((r) => r[k]));
  const rows = (["prefillTokS", "decodeTokS"] as const).map((k) => [
    k === "prefillTokS" ? `prefill pp${promptLen} tok/s` : `decode tg${genLen} tok/s`,
    fmt(agg("prebuilt", k)),
    fmt(agg("local", k)),
    ratio(agg("local", k), agg("prebuilt", k)),
  ]);
  const lines = [
    `addon speed, ${path.basename(modelPath)}, ${threads} threads, median of ${2 * Number(opt.rounds)} rounds per build (2 processes each, alternating)`,
    table(["measure", "prebuilt", "local build", "local / prebuilt"], rows),
  ];
  for (const b of ["prebuilt", "local"] as Build[]) lines.push(`${b} CPU backend: ${speeds[b][0]?.cpuBackend || "(none mapped)"}`);
  for (const b of ["prebuilt", "local"] as Build[]) {
    process.stderr.write(`[addon-compare] ${b}: two prompts in one batch ...\n`);
    const r = JSON.parse(await runChild([...common, "--child", `batch:${b}`, "--log-file", path.join(opt.out!, `batch-${b}.log`)])) as BatchResult;
    lines.push(`${b}: ${r.wrong} of ${r.runs} next tokens wrong with two prompts in one batch (scripted q8_0 model)`);
  }
  if (!opt["no-unified-check"]) {
    const logFile = path.join(opt.out!, "unified.log");
    writeFileSync(logFile, "");
    process.stderr.write(`[addon-compare] unified pool check ...\n`);
    const u = JSON.parse(await runChild([...common, "--child", "unified", "--log-file", logFile])) as UnifiedResult;
    lines.push("", "unified KV pool (local build):", JSON.stringify(u, null, 2));
  }
  const text = lines.join("\n");
  writeFileSync(path.join(opt.out!, "report.md"), `${text}\n`);
  process.stdout.write(`${text}\n`);
}

main().catch((err) => {
  process.stderr.write(`addon-compare: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
