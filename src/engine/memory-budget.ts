/**
 * Refuses a model that cannot fit before llama.cpp tries to allocate it (on an edge box that
 * ends in the OOM killer, not an error): weights + KV cache + compute buffers, estimated with
 * node-llama-cpp's GGUF insights, against `model.memoryBudgetMB` or the memory available to
 * the process (its cgroup limit or the machine's free memory).
 */
import { GgmlType, GgufInsights, readGgufFileInfo, type GgufFileInfo, type Llama } from "node-llama-cpp";
import type { Config } from "../config/schema.js";
import { kvLayout } from "./kv/layout.js";
import { declaredPooling, embeddingContextShape } from "./embedder.js";
import { cachedEstimate } from "./estimate-cache.js";

export class MemoryBudgetError extends Error {
  override name = "MemoryBudgetError";
}

export interface MemoryEstimate {
  weightsBytes: number;
  /** KV cache, compute buffers and outputs of one context with all its sequences. */
  contextBytes: number;
  /** KV cells that context holds. */
  contextTokens: number;
}

const KV_TYPES = { f16: GgmlType.F16, q8_0: GgmlType.Q8_0 } as const;
const MiB = 2 ** 20;
const mib = (bytes: number) => Math.ceil(bytes / MiB);

const VOCABULARY_ARRAYS = ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores"];

/** How a stored header is written (below); a new one makes earlier entries misses. */
const HEADER_FORMAT = 1;
/** A vocabulary array read by length only is `new Array(length)`, which JSON would write as that many nulls. */
const LENGTH_ONLY = "edgellmLengthOnly";

const readHeader = (modelPath: string) => readGgufFileInfo(modelPath, { logWarnings: false, lengthOnlyKeys: VOCABULARY_ARRAYS });

/** `info` as JSON can hold it, or null when it cannot (a 64-bit value beyond a double, which JSON refuses). */
function storableHeader(info: GgufFileInfo): unknown {
  try {
    return JSON.parse(JSON.stringify(info, (_key, value: unknown) => (Array.isArray(value) && value.length > 0 && !(0 in value) ? { [LENGTH_ONLY]: value.length } : value)));
  } catch {
    return null;
  }
}

/**
 * An array of `length` holes, as `new Array(length)` is, without its cost: V8 fills a fast array's
 * backing store with holes up front (about 6 ms for a 151k vocabulary here), while one whose only
 * index was far past its end keeps its elements in a dictionary.
 */
function holes(length: number): unknown[] {
  const array: unknown[] = [];
  if (length === 0) return array;
  array[length - 1] = undefined;
  delete array[length - 1];
  return array;
}

function restoredHeader(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(restoredHeader);
  if (typeof value !== "object" || value === null) return value;
  const length = (value as Record<string, unknown>)[LENGTH_ONLY];
  if (typeof length === "number") return holes(length);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restoredHeader(v)]));
}

/**
 * The model file's GGUF header as node-llama-cpp reads it (the vocabulary arrays by length only),
 * for the estimate and for `loadModel` (`_edgellmFileInfo`, patches/), which would each read it
 * again. With `cacheDir` it is kept beside the estimates, keyed by the file as they are: reading
 * a Qwen3 model's header (its 151k-token vocabulary walked for the lengths) takes 0.1 to 0.3 s
 * of a start, the stored copy 6 to 9 ms.
 */
export async function modelHeader(modelPath: string, cacheDir: string | undefined): Promise<GgufFileInfo> {
  if (!cacheDir) return readHeader(modelPath);
  // On a miss the header just read is the answer, not its stored copy parsed back.
  let read: GgufFileInfo | undefined;
  const stored = await cachedEstimate(cacheDir, modelPath, { header: HEADER_FORMAT }, async () => storableHeader((read = await readHeader(modelPath))));
  if (read) return read;
  return stored === null ? readHeader(modelPath) : (restoredHeader(stored) as GgufFileInfo);
}

/** Where estimates are kept across starts (estimate-cache.ts), and which addon build made them. */
export interface EstimateCache {
  dir: string;
  build: string;
}

/**
 * `llama` undefined: node-llama-cpp's backend-less binding (enough for the estimate, as in the main
 * process). `unified`: the context gets one KV pool shared by its sequences (sizes the default pool).
 */
export async function estimateMemory(llama: Llama | undefined, modelPath: string, model: Config["model"], unified: boolean, cache?: EstimateCache, header?: GgufFileInfo): Promise<MemoryEstimate> {
  const { contextSize, sequences, kvPoolTokens, batchSize, kvCacheType } = model;
  const settings = { contextSize, sequences, kvPoolTokens, batchSize, kvCacheType, unified, build: cache?.build };
  return cachedEstimate(cache?.dir, modelPath, settings, async () => simulate(llama, header ?? (await readHeader(modelPath)), model, unified));
}

/** `info`: the file's header, the vocabulary by length only (all the estimate reads of it; patches/: lengthOnlyKeys). */
async function simulate(llama: Llama | undefined, info: GgufFileInfo, model: Config["model"], unified: boolean): Promise<MemoryEstimate> {
  const insights = await GgufInsights.from(info, llama);
  const weights = await insights.estimateModelResourceRequirementsV2({ gpuLayers: 0 });
  const pooling = declaredPooling(info.metadata);
  if (pooling) {
    // An embedding model gets one single-sequence embedding context instead (embedder.ts).
    const { contextSize, batchSize } = embeddingContextShape(pooling, model, insights.trainContextSize ?? model.contextSize);
    const context = await insights.estimateContextResourceRequirementsV2({ contextSize, batchSize, sequences: 1, modelGpuLayers: 0, isEmbeddingContext: true });
    return { weightsBytes: weights.cpuRam, contextBytes: context.cpuRam, contextTokens: contextSize };
  }
  const layout = kvLayout(model, unified);
  // The V2 estimate simulates llama.cpp's allocation; the older formula prices a q8_0 KV cell
  // as a whole 34-byte block (an order of magnitude too much) and would refuse models that fit.
  const context = await insights.estimateContextResourceRequirementsV2({
    contextSize: layout.contextPerSequence,
    sequences: model.sequences,
    batchSize: model.batchSize,
    modelGpuLayers: 0,
    kvCacheKeyType: KV_TYPES[model.kvCacheType],
    kvCacheValueType: KV_TYPES[model.kvCacheType],
  });
  return { weightsBytes: weights.cpuRam, contextBytes: context.cpuRam, contextTokens: layout.poolTokens };
}

/** Throws a MemoryBudgetError with the numbers when the estimate exceeds the budget. */
export async function checkMemoryBudget(llama: Llama, modelPath: string, model: Config["model"], unified: boolean, cache?: EstimateCache, header?: GgufFileInfo): Promise<MemoryEstimate> {
  const estimate = await estimateMemory(llama, modelPath, model, unified, cache, header);
  const needed = estimate.weightsBytes + estimate.contextBytes;
  const explicit = model.memoryBudgetMB > 0;
  const budget = explicit ? model.memoryBudgetMB * MiB : process.availableMemory();
  if (needed > budget) {
    const limit = explicit ? `model.memoryBudgetMB is ${mib(budget)} MiB` : `only ${mib(budget)} MiB are available`;
    throw new MemoryBudgetError(
      `the model needs about ${mib(needed)} MiB (weights ${mib(estimate.weightsBytes)} MiB, KV cache and compute buffers ` +
        `${mib(estimate.contextBytes)} MiB for ${estimate.contextTokens} KV cells with ${model.kvCacheType} KV) but ${limit}; ` +
        `lower model.kvPoolTokens, model.contextSize or model.sequences, use kvCacheType q8_0, or a smaller quantization`,
    );
  }
  return estimate;
}
