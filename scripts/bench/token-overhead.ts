/**
 * Where the time of one generated token goes, layer by layer, on one model and thread count:
 *
 *   raw greedy 1seq   node-llama-cpp alone: a 1-sequence context, `sequence.evaluate()`, no options
 *   raw greedy        the same in a context with as many sequences as the engine (only one used)
 *   raw sampled       + edgellm's sampling options (buildEvaluateOptions, Qwen3 thinking defaults
 *                     T=0.6 top_p=0.95 top_k=20 min_p=0, fixed seed)
 *   raw sampled+pen   + repeat_penalty 1.1 over the recent completion tokens
 *   engine            Engine.submit() in this process (scheduler, slot, generation, events)
 *   server            the full server over HTTP SSE (router, worker process, IPC, chat route)
 *   llama-server      llama.cpp's own server on the same model, threads, slots and sampling, over
 *                     the same HTTP SSE (`npm run build:llama-server`; skipped when not built)
 *
 * One child process per (addon backend, model): a process loads one addon (src/engine/backend.ts).
 * Each child loads the model once through Engine.load, builds the raw contexts on the engine's
 * own model, and starts a test server (its own worker process) on the same file. The parent
 * runs the children in turn, one repetition of every variant at a time, the variants in a
 * rotating order, so machine load hits all of them alike; the first repetition is a discarded
 * warm-up.
 *
 * Each run times the interval between consecutive generated tokens (the prompt evaluation is
 * excluded): its p50 (the ITL the benchmark reports, robust to the machine's other work), its p99
 * and its mean (first token to last over the tokens in between). The table shows per variant the
 * median of each over the repetitions, the p50's min-max, and the median per-repetition ratio of
 * the p50 to "raw greedy 1seq".
 *
 *   npm run bench:tokens -- [--threads 1] [--models tiny,qwen3-0.6b]
 *       [--backends auto,per-sequence] [--reps 5] [--tiny-tokens 256] [--qwen-tokens 64]
 *       [--sequences 4] [--variants engine,server] [--cpu-prof <dir>]
 *
 * "tiny" is a scripted model (test/helpers/models.ts) that loops its script forever, so every
 * run yields exactly the requested tokens; "qwen3-0.6b" is the random-weight q8_0 preset with
 * Qwen3-0.6B's exact shape (synthesized once into models/test-cache, about 600 MB). Backend
 * "auto" is the unified-KV local build when one exists (the server's default), "per-sequence"
 * the prebuilt addon. `--cpu-prof <dir>` writes a V8 CPU profile of each child into <dir>: the
 * raw layers, the engine and the server's main process (not its worker process: Node refuses
 * --cpu-prof in NODE_OPTIONS, and the worker runs the engine code profiled here plus its IPC).
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LlamaContext, LlamaContextSequence, LlamaModel, SequenceEvaluateOptions, Token } from "node-llama-cpp";
import { loadConfig } from "../../src/config/load.js";
import { Engine } from "../../src/engine/engine.js";
import { EngineError } from "../../src/engine/errors.js";
import { buildEvaluateOptions, resolveSampling } from "../../src/engine/sampling.js";
import type { GenerationRequest } from "../../src/engine/types.js";
import { presetModel, scriptedModel } from "../../test/helpers/models.js";
import { startTestServer } from "../../test/helpers/server.js";
import { listArg, numberArg } from "../lib/args.js";
import { freePort, llamaServerSpec, startServer, type RunningServer } from "../lib/servers.js";
import { deltaText, sseEvents, type ChatChunk } from "../lib/sse.js";
import { fmt, percentile, table } from "../lib/stats.js";
import { handleHelp, ROOT } from "../lib/tool.js";

handleHelp(import.meta.url);

const LLAMA_SERVER = join(ROOT, "vendor-build/llama.cpp/build/bin/llama-server");

const VARIANTS = ["raw greedy 1seq", "raw greedy", "raw sampled", "raw sampled+pen", "engine", "server", "llama-server"] as const;
type Variant = (typeof VARIANTS)[number];
const MODELS = ["tiny", "qwen3-0.6b"] as const;
type ModelName = (typeof MODELS)[number];
const BACKENDS = ["auto", "per-sequence"] as const;
type Backend = (typeof BACKENDS)[number];

const { values: opt } = parseArgs({
  options: {
    threads: { type: "string", default: "1" },
    models: { type: "string", default: MODELS.join(",") },
    backends: { type: "string", default: BACKENDS.join(",") },
    reps: { type: "string", default: "5" },
    "tiny-tokens": { type: "string", default: "256" },
    "qwen-tokens": { type: "string", default: "64" },
    sequences: { type: "string", default: "4" },
    variants: { type: "string", default: VARIANTS.join(",") },
    "cpu-prof": { type: "string" },
    // internal: this process is the child for one backend and model
    child: { type: "string" },
  },
  strict: true,
});

const threads = numberArg("threads", opt.threads);
const sequences = numberArg("sequences", opt.sequences, { min: 1 });
const variants = listArg("variants", opt.variants, VARIANTS);

const PROMPT_USER = "Write a long story about a river.";
/** Qwen3's rendered generation prompt with thinking on; it ends in "\n", the scripted model's trigger. */
const PROMPT_TEXT = `<|im_start|>user\n${PROMPT_USER}<|im_end|>\n<|im_start|>assistant\n`;
const CONTEXT_SIZE = 1024;
const SEED = 1234;

interface RepResult {
  variant: Variant;
  /** Median time between consecutive tokens: robust to the other work on the machine. */
  p50: number;
  p99: number;
  /** Time from the first token to the last over the tokens in between. */
  mean: number;
  /** Tokens generated, the first included (the random-weight model may end early). */
  tokens: number;
}

/**
 * `marks` are the arrival times of output pieces and how many tokens each carried; the first
 * piece (it carries the prompt evaluation) only opens the clock.
 */
function result(variant: Variant, marks: ReadonlyArray<readonly [time: number, tokens: number]>): RepResult {
  const intervals: number[] = [];
  let tokens = 0;
  for (let i = 1; i < marks.length; i++) {
    const [time, n] = marks[i]!;
    for (let k = 0; k < n; k++) intervals.push((time - marks[i - 1]![0]) / n);
    tokens += n;
  }
  const span = marks[marks.length - 1]![0] - marks[0]![0];
  return { variant, p50: percentile(intervals, 50), p99: percentile(intervals, 99), mean: span / tokens, tokens: tokens + marks[0]![1] };
}

type ChildMessage = { type: "ready"; addon: string } | { type: "rep"; results: RepResult[] } | { type: "error"; message: string };

// ---------------------------------------------------------------- child: one backend, one model

async function modelFile(name: ModelName): Promise<string> {
  if (name === "tiny") return scriptedModel(["The river ran past the old mill and on to the sea. "], { loop: true });
  return presetModel("qwen3-0.6b", "q8_0");
}

async function runChild(spec: string): Promise<void> {
  const [backend, name] = spec.split(":") as [Backend, ModelName];
  const tokens = name === "tiny" ? numberArg("tiny-tokens", opt["tiny-tokens"], { min: 1 }) : numberArg("qwen-tokens", opt["qwen-tokens"], { min: 1 });
  const path = await modelFile(name);
  const set = {
    "model.source": path,
    "model.contextSize": CONTEXT_SIZE,
    "model.sequences": sequences,
    // A full context per sequence, as llama-server's -c sequences x CONTEXT_SIZE below.
    "model.kvPoolTokens": sequences * CONTEXT_SIZE,
    "model.threads": threads,
    "model.kvPool": backend,
    "log.level": "silent",
  };
  const config = loadConfig({ set }, {});
  const engine = await Engine.load(
    { modelPath: path, modelId: basename(path, ".gguf"), model: config.model, generation: config.generation, limits: config.limits },
    (level, msg) => {
      if (level === "error") process.stderr.write(`engine: ${msg}\n`);
    },
  );
  // The raw layers run on the engine's own model (same weights, same addon, same Llama).
  const model = (engine as unknown as { model: LlamaModel }).model;
  const unified = engine.info.kvPool === "unified";
  const contextOptions = {
    contextSize: CONTEXT_SIZE,
    threads,
    batchSize: config.model.batchSize,
    experimentalKvCacheKeyType: "F16",
    experimentalKvCacheValueType: "F16",
    ...(unified && { kvUnified: true }),
  } as const;
  const single = await model.createContext({ ...contextOptions, sequences: 1 });
  const multi = await model.createContext({ ...contextOptions, sequences });
  const prompt = model.tokenize(PROMPT_TEXT, true);
  const server = variants.includes("server") ? await startTestServer(path, set) : undefined;
  const llamaServer = variants.includes("llama-server") ? await startLlamaServer(path, unified) : undefined;

  const run = async (variant: Variant): Promise<RepResult> => {
    switch (variant) {
      case "raw greedy 1seq":
        return raw(variant, single, prompt, tokens, () => ({}));
      case "raw greedy":
        return raw(variant, multi, prompt, tokens, () => ({}));
      case "raw sampled":
        return raw(variant, multi, prompt, tokens, (recent) => buildEvaluateOptions(resolveSampling({ seed: SEED }, config.generation.samplingThinking), recent));
      case "raw sampled+pen":
        return raw(variant, multi, prompt, tokens, (recent) =>
          buildEvaluateOptions(resolveSampling({ seed: SEED, repeatPenalty: 1.1 }, config.generation.samplingThinking), recent),
        );
      case "engine":
        return viaEngine(engine, tokens);
      case "server":
        return viaHttp("server", `${server!.baseURL}/chat/completions`, { model: server!.modelId, max_tokens: tokens });
      case "llama-server":
        // The engine's sampling spelled out (llama-server defaults to top_k 40, min_p 0.05), no early end.
        return viaHttp("llama-server", `${llamaServer!.baseURL}/v1/chat/completions`, {
          max_tokens: tokens,
          ignore_eos: true,
          temperature: config.generation.samplingThinking.temperature,
          top_p: config.generation.samplingThinking.topP,
          top_k: config.generation.samplingThinking.topK,
          min_p: config.generation.samplingThinking.minP,
        });
    }
  };

  send({ type: "ready", addon: engine.info.addonBuild });
  let rep = 0;
  process.on("message", (msg: { type: "rep" } | { type: "exit" }) => {
    if (msg.type === "exit") {
      void (async () => {
        await server?.stop();
        await llamaServer?.stop();
        await single.dispose();
        await multi.dispose();
        await engine.dispose();
        process.exit(0);
      })();
      return;
    }
    void (async () => {
      const results: RepResult[] = [];
      // Rotate the order so that no variant always runs first (or right after a model load).
      const active = variants.filter((v) => v !== "llama-server" || llamaServer);
      const order = active.map((_, i) => active[(i + rep) % active.length]!);
      rep++;
      for (const variant of order) results.push(await run(variant));
      send({ type: "rep", results });
    })().catch((err: unknown) => send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  });
}

function send(msg: ChildMessage): void {
  process.send!(msg);
}

async function raw(
  variant: Variant,
  context: LlamaContext,
  prompt: Token[],
  tokens: number,
  options: (recent: () => number[]) => SequenceEvaluateOptions,
): Promise<RepResult> {
  const sequence: LlamaContextSequence = context.getSequence({ contextShift: { size: 0 } });
  try {
    const generated: number[] = [];
    const generator = sequence.evaluate(prompt, { ...options(() => generated), yieldEogToken: true });
    const marks: Array<[number, number]> = [];
    for (let i = 0; i < tokens; i++) {
      const r = await generator.next();
      if (r.done) throw new Error(`${variant}: the evaluation ended after ${i} tokens`);
      generated.push(r.value);
      marks.push([performance.now(), 1]);
    }
    await generator.return();
    return result(variant, marks);
  } finally {
    sequence.dispose();
  }
}

let requestId = 0;

function request(tokens: number): GenerationRequest {
  return {
    requestId: `bench-${++requestId}`,
    messages: [{ role: "user", content: PROMPT_USER }],
    templateKwargs: {},
    maxTokens: tokens,
    sampling: { seed: SEED },
    stop: [],
  };
}

function viaEngine(engine: Engine, tokens: number): Promise<RepResult> {
  return new Promise((resolve, reject) => {
    const marks: Array<[number, number]> = [];
    const req = request(tokens);
    engine.submit(requestId, req, (ev) => {
      if (ev.type === "text") marks.push([performance.now(), ev.tokens]);
      else if (ev.type === "done") resolve(result("engine", marks));
      else if (ev.type === "failed") reject(new EngineError(ev.error));
    });
  });
}

/** llama.cpp's llama-server on the same file, threads, slots, context and KV pool mode as the engine. */
async function startLlamaServer(path: string, unified: boolean): Promise<RunningServer | undefined> {
  if (!existsSync(LLAMA_SERVER)) {
    process.stderr.write(`llama-server is not built (${LLAMA_SERVER}): npm run build:llama-server; skipping it\n`);
    return undefined;
  }
  const run = { model: path, alias: basename(path, ".gguf"), slots: sequences, ctxSize: CONTEXT_SIZE, threads, kvPool: unified ? "unified" : "per-sequence" } as const;
  const logFile = join(tmpdir(), `token-overhead-llama-server-${process.pid}.log`);
  return startServer(llamaServerSpec(run, LLAMA_SERVER, await freePort(), logFile, "auto"));
}

/** One streamed chat completion; `extra` completes the body. */
async function viaHttp(variant: Variant, url: string, extra: Record<string, unknown>): Promise<RepResult> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: PROMPT_USER }],
      seed: SEED,
      stream: true,
      ...extra,
    }),
  });
  if (!res.ok || !res.body) throw new Error(`${variant}: HTTP ${res.status} ${await res.text()}`);
  const marks: Array<[number, number]> = [];
  for await (const { data, at } of sseEvents(res.body)) {
    if (data !== "[DONE]" && deltaText(JSON.parse(data) as ChatChunk) !== "") marks.push([at, 1]);
  }
  // One delta per token: SSE carries no token counts (a token that completes no UTF-8
  // character would merge two, which the scripted model never produces).
  return result(variant, marks);
}

// ---------------------------------------------------------------- parent

interface Child {
  key: string;
  process: ChildProcess;
  addon: string;
  results: RepResult[];
}

function nextMessage(child: ChildProcess): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: ChildMessage) => {
      child.off("exit", onExit);
      if (msg.type === "error") reject(new Error(msg.message));
      else resolve(msg);
    };
    const onExit = (code: number | null) => {
      child.off("message", onMessage);
      reject(new Error(`child exited with code ${code}`));
    };
    child.once("message", onMessage);
    child.once("exit", onExit);
  });
}

async function runParent(): Promise<void> {
  const models = listArg("models", opt.models, MODELS);
  const backends = listArg("backends", opt.backends, BACKENDS);
  const reps = numberArg("reps", opt.reps, { min: 1 });
  const prof = opt["cpu-prof"];
  const profArgs = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  console.log(`threads ${threads}, sequences ${sequences}, reps ${reps} (+1 warm-up), tokens: tiny ${opt["tiny-tokens"]}, qwen3-0.6b ${opt["qwen-tokens"]}`);

  const children: Child[] = [];
  for (const name of models) {
    for (const backend of backends) {
      const key = `${backend}:${name}`;
      const child = fork(fileURLToPath(import.meta.url), ["--child", key, ...process.argv.slice(2)], {
        execArgv: ["--import", "tsx", ...profArgs],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      const ready = await nextMessage(child);
      const addon = ready.type === "ready" ? ready.addon : "?";
      children.push({ key, process: child, addon, results: [] });
      console.log(`${key}: loaded (${addon} addon)`);
    }
  }

  for (let rep = 0; rep <= reps; rep++) {
    for (const child of children) {
      child.process.send({ type: "rep" });
      const msg = await nextMessage(child.process);
      if (msg.type !== "rep") throw new Error(`unexpected message from ${child.key}`);
      if (rep > 0) child.results.push(...msg.results);
      console.log(`rep ${rep === 0 ? "warm-up" : rep} ${child.key}: ${msg.results.map((r) => `${r.variant} ${fmt(r.p50, 2)}/${fmt(r.mean, 2)} (${r.tokens})`).join(", ")}`);
    }
  }
  for (const child of children) {
    child.process.send({ type: "exit" });
    await new Promise((resolve) => child.process.once("exit", resolve));
  }

  // Per child: each repetition's ITL p50, p99 and mean, summarized by their median (and range).
  for (const c of children) {
    const base = c.results.filter((r) => r.variant === "raw greedy 1seq");
    const rows = variants.map((variant) => {
      const mine = c.results.filter((r) => r.variant === variant);
      const p50 = mine.map((r) => r.p50);
      // Side by side: each repetition's ratio to the baseline measured in the same repetition.
      const ratios = base.length === mine.length ? mine.map((r, i) => r.p50 / base[i]!.p50) : [];
      return [
        variant,
        `${fmt(percentile(p50, 50), 2)} [${fmt(Math.min(...p50), 2)}-${fmt(Math.max(...p50), 2)}]`,
        fmt(percentile(mine.map((r) => r.p99), 50), 2),
        fmt(percentile(mine.map((r) => r.mean), 50), 2),
        ratios.length ? `${fmt(percentile(ratios, 50), 2)}x` : "-",
      ];
    });
    console.log(`\n${c.key} (${c.addon} addon), ms per token, median of ${reps} repetitions:\n`);
    console.log(table(["layer", "ITL p50 [min-max]", "ITL p99", "mean", "p50 / raw greedy 1seq"], rows));
  }
}

if (opt.child) await runChild(opt.child);
else await runParent();
