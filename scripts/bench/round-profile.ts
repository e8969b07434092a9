/**
 * Where the time of one decode round goes: `--concurrency` sequences each generating one token
 * per round, on one model and thread count, in two ways:
 *
 *   generator  what the engine did before issue 10: one node-llama-cpp `sequence.evaluate()`
 *              generator per sequence, every `next()` issued in the same tick (node-llama-cpp
 *              batches them into one `decodeBatch`, then samples each sequence with its own
 *              `sampleToken` call)
 *   round      the engine's RoundDecoder: one batch, one native call per round
 *              (`decodeAndSampleBatch` with the patched addon; a decode plus one `sampleToken`
 *              per sequence on the prebuilt one)
 *
 * Per round it reports (medians over the measured rounds, in ms): the round's wall time as the
 * caller sees it, the time in llama_decode, the time sampling, and the rest (JS, promise hops,
 * thread-pool queueing), and the native calls per round. For `generator` the decode and the
 * sampling are timed around node-llama-cpp's native calls (the decode from its call to its
 * promise, the sampling from the decode's end to the last sampled token's promise); for `round`
 * the patched addon times both in C++. The sampling options are Qwen3's non-thinking defaults
 * (T=0.7 top_p=0.8 top_k=20, fixed seeds); the model is the random-weight q8_0 preset with
 * Qwen3-0.6B's shape (synthesized once into models/test-cache). End-of-generation tokens are
 * evaluated like any other, so every round has every sequence.
 *
 *   tsx scripts/bench/round-profile.ts [--concurrency 1,8] [--threads 2] [--rounds 48]
 *       [--prompt-tokens 64,1024] [--paths generator,round] [--kv-pool auto|per-sequence] [--model <file.gguf>]
 *       [--sequences N] [--context-size N]
 *
 * `--sequences` and `--context-size` give the context more sequences and cells than the run uses
 * (default: C sequences, just enough cells), as a server's pool has: `--sequences 8
 * --context-size 12288` is `npm run bench`'s layout with one stream active.
 *
 * Two prompt lengths show whether the per-round JS work grows with the context.
 */
import { parseArgs } from "node:util";
import { LlamaLogLevel, type LlamaContext, type LlamaModel, type Token } from "node-llama-cpp";
import { loadLlamaBackend } from "../../src/engine/backend.js";
import { RoundDecoder, type DecodeCall } from "../../src/engine/round-decoder.js";
import { buildEvaluateOptions } from "../../src/engine/sampling.js";
import { presetModel } from "../../test/helpers/models.js";
import { listArg, numberArg } from "../lib/args.js";
import { fmt, percentile, table } from "../lib/stats.js";
import { handleHelp, logger } from "../lib/tool.js";

handleHelp(import.meta.url);

const { values: opt } = parseArgs({
  options: {
    concurrency: { type: "string", default: "1,8" },
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "48" },
    "prompt-tokens": { type: "string", default: "64,1024" },
    paths: { type: "string", default: "generator,round" },
    "kv-pool": { type: "string", default: "auto" },
    model: { type: "string" },
    sequences: { type: "string" },
    "context-size": { type: "string" },
  },
  strict: true,
});

const log = logger("round-profile");
const numbers = (name: string, value: string) => value.split(",").map((v) => numberArg(name, v.trim(), { min: 1 }));
const concurrencies = numbers("concurrency", opt.concurrency);
const threads = numberArg("threads", opt.threads, { min: 1 });
const rounds = numberArg("rounds", opt.rounds, { min: 1 });
const promptLengths = numbers("prompt-tokens", opt["prompt-tokens"]);
const paths = listArg("paths", opt.paths, ["generator", "round"] as const);
const kvPool = listArg("kv-pool", opt["kv-pool"], ["auto", "per-sequence"] as const)[0]!;
const contextSequences = opt.sequences === undefined ? undefined : numberArg("sequences", opt.sequences, { min: 1 });
const contextCells = opt["context-size"] === undefined ? undefined : numberArg("context-size", opt["context-size"], { min: 1 });
const BATCH = 512;
const WARMUP_ROUNDS = 4;

interface RoundTimes {
  wall: number;
  decode: number;
  sample: number;
  calls: number;
}

interface TimedNative {
  decodeBatch(): Promise<void>;
  sampleToken(...args: unknown[]): Promise<unknown>;
}

const sampling = (seed: number) =>
  buildEvaluateOptions({ temperature: 0.7, topP: 0.8, topK: 20, minP: 0, seed, presencePenalty: 0, frequencyPenalty: 0, repeatPenalty: 1 }, () => []);

function promptOf(model: LlamaModel, tokens: number, i: number): Token[] {
  const words = Array.from({ length: tokens }, (_, k) => `w${(k * 7 + i) % 97}`).join(" ");
  return model.tokenize(words).slice(0, tokens);
}

/** node-llama-cpp's generators, stepped in lockstep; its native calls timed by wrapping them. */
async function generatorRounds(context: LlamaContext, model: LlamaModel, c: number, promptTokens: number): Promise<RoundTimes[]> {
  const ctx = (context as unknown as { _ctx: TimedNative })._ctx;
  const decode = ctx.decodeBatch.bind(ctx);
  const sample = ctx.sampleToken.bind(ctx);
  let decodeStart = 0;
  let decodeEnd = 0;
  let lastSample = 0;
  let calls = 0;
  // The addon's methods are read-only on its prototype: the wrappers go on the instance.
  const wrap = (name: keyof TimedNative, fn: TimedNative[keyof TimedNative]) => Object.defineProperty(ctx, name, { value: fn, configurable: true });
  wrap("decodeBatch", async () => {
    calls++;
    decodeStart = performance.now();
    await decode();
    decodeEnd = performance.now();
  });
  wrap("sampleToken", async (...args: unknown[]) => {
    calls++;
    const r = await sample(...args);
    lastSample = performance.now();
    return r;
  });
  const sequences = Array.from({ length: c }, () => context.getSequence());
  const generators = sequences.map((s, i) => s.evaluate(promptOf(model, promptTokens, i), { ...sampling(i + 1), yieldEogToken: true }));
  const out: RoundTimes[] = [];
  try {
    for (let r = 0; r < rounds + WARMUP_ROUNDS; r++) {
      calls = 0;
      const start = performance.now();
      await Promise.all(generators.map((g) => g.next()));
      const wall = performance.now() - start;
      if (r >= WARMUP_ROUNDS + 1) out.push({ wall, decode: decodeEnd - decodeStart, sample: lastSample - decodeEnd, calls });
    }
  } finally {
    for (const g of generators) await g.return();
    for (const s of sequences) s.dispose();
    delete (ctx as Partial<TimedNative>).decodeBatch;
    delete (ctx as Partial<TimedNative>).sampleToken;
  }
  return out;
}

/** The engine's RoundDecoder, as LlamaSlot drives it. */
async function decoderRounds(context: LlamaContext, model: LlamaModel, c: number, promptTokens: number): Promise<RoundTimes[]> {
  const decoder = RoundDecoder.of(context);
  let last: DecodeCall | undefined;
  decoder.observe((call) => (last = call));
  const sequences = Array.from({ length: c }, () => context.getSequence());
  const samplers = sequences.map(() => decoder.newSampler());
  const options = sequences.map((_, i) => sampling(i + 1));
  const prompts = sequences.map((_, i) => promptOf(model, promptTokens, i));
  // The prompts but their last tokens first, a batch at a time; the first round evaluates those.
  for (const [i, s] of sequences.entries()) {
    const head = prompts[i]!.slice(0, -1);
    for (let at = 0; at < head.length; at += BATCH) await decoder.submit(s, head.slice(at, at + BATCH));
  }
  let next: Token[][] = prompts.map((p) => p.slice(-1));
  const out: RoundTimes[] = [];
  try {
    for (let r = 0; r < rounds + WARMUP_ROUNDS; r++) {
      const start = performance.now();
      const results = await Promise.all(
        sequences.map((s, i) => {
          decoder.configure(samplers[i]!, s, options[i]!);
          return decoder.submit(s, next[i]!, { sampler: samplers[i]!, logprobs: undefined });
        }),
      );
      const wall = performance.now() - start;
      next = results.map((x) => [x.token as Token]);
      const call = last!;
      const native = call.decodeUs !== undefined;
      if (r >= WARMUP_ROUNDS + 1) {
        out.push({
          wall,
          decode: native ? call.decodeUs! / 1000 : NaN,
          sample: native ? call.sampleUs! / 1000 : NaN,
          calls: call.nativeCalls,
        });
      }
    }
  } finally {
    for (const s of samplers) s.dispose();
    for (const s of sequences) s.dispose();
  }
  return out;
}

const modelPath = opt.model ?? (await presetModel("qwen3-0.6b", "q8_0"));
const backend = await loadLlamaBackend(kvPool, { logLevel: LlamaLogLevel.warn, logger: () => {} });
log(`addon: ${backend.build}${backend.unifiedKv ? " (unified KV)" : ""}; model ${modelPath}; ${threads} threads`);
const model = await backend.llama.loadModel({ modelPath });
const rows: string[][] = [];
const med = (xs: number[]) => (xs.some(Number.isNaN) ? "-" : fmt(percentile(xs, 50), 2));
for (const c of concurrencies) {
  for (const promptTokens of promptLengths) {
    for (const path of paths) {
      // A fresh context per run: a path's sequences never see another's cache.
      const context = await model.createContext({
        sequences: Math.max(c, contextSequences ?? c),
        contextSize: contextCells ?? promptTokens + rounds + WARMUP_ROUNDS + 64,
        batchSize: BATCH,
        threads,
        ...(backend.unifiedKv && { kvUnified: true }),
      });
      try {
        log(`${path}: C=${c}, ${promptTokens} prompt tokens`);
        const times = await (path === "generator" ? generatorRounds : decoderRounds)(context, model, c, promptTokens);
        const wall = times.map((t) => t.wall);
        const decode = times.map((t) => t.decode);
        const sample = times.map((t) => t.sample);
        const rest = times.map((t) => t.wall - t.decode - t.sample);
        rows.push([path, String(c), String(promptTokens), med(wall), med(decode), med(sample), med(rest), fmt(percentile(times.map((t) => t.calls), 50), 0)]);
      } finally {
        await context.dispose();
      }
    }
  }
}
console.log(`\n${backend.build} addon, ${threads} threads, ${rounds} rounds each (medians, ms per round)\n`);
console.log(table(["path", "C", "prompt", "round wall", "decode", "sampling", "JS + hops", "native calls"], rows));
await model.dispose();
await backend.llama.dispose();
