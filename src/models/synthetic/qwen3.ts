/**
 * The `qwen3` architecture as llama.cpp loads it (src/models/qwen3.cpp): metadata keys,
 * tensor names and ggml shapes, plus the random-weight presets.
 */
import { gguf, type GgufFile, type GgufTensor, type GgufValue } from "./gguf-writer.js";
import { Rng } from "./prng.js";
import { GgmlType, weightGgmlType, type WeightType } from "./quantize.js";
import { QWEN3_VOCAB_SIZE, loadQwen3Vocab, qwen3TokenizerMetadata } from "./qwen3-vocab.js";

export interface Qwen3Shape {
  readonly blockCount: number;
  readonly contextLength: number;
  readonly embeddingLength: number;
  readonly feedForwardLength: number;
  readonly headCount: number;
  readonly headCountKv: number;
  /** Qwen3 sets head_dim independently of embedding_length / head_count (0.6B: 128 vs 64). */
  readonly headDim: number;
  readonly ropeFreqBase: number;
  readonly rmsNormEps: number;
  /** Tied: no output.weight, llama.cpp reuses token_embd as the LM head. */
  readonly tiedEmbeddings: boolean;
}

export type Qwen3Preset = "tiny" | "qwen3-0.6b";

/**
 * How an embedding model pools its token states into one vector, as llama.cpp reads
 * `<arch>.pooling_type` (enum llama_pooling_type in include/llama.h). A chat model has no key.
 */
export type EmbeddingPooling = "mean" | "cls" | "last";
export const POOLING_TYPE_IDS: Readonly<Record<EmbeddingPooling, number>> = { mean: 1, cls: 2, last: 3 };

export const QWEN3_PRESETS: Readonly<Record<Qwen3Preset, Qwen3Shape>> = {
  tiny: {
    blockCount: 2,
    contextLength: 4096,
    embeddingLength: 64,
    feedForwardLength: 128,
    headCount: 4,
    headCountKv: 2,
    headDim: 32,
    ropeFreqBase: 1_000_000,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
  },
  // Qwen/Qwen3-0.6B config.json.
  "qwen3-0.6b": {
    blockCount: 28,
    contextLength: 40960,
    embeddingLength: 1024,
    feedForwardLength: 3072,
    headCount: 16,
    headCountKv: 8,
    headDim: 128,
    ropeFreqBase: 1_000_000,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
  },
};

export const QWEN3_PRESET_NAMES = Object.keys(QWEN3_PRESETS) as Qwen3Preset[];

/** llama_ftype ids for the "mostly <type>" files this generator writes. */
const FILE_TYPE: Record<WeightType, number> = { f16: 1, q4_0: 2, q8_0: 7 };
/** GGML_QNT_VERSION; gguf-py always writes it. */
const QUANTIZATION_VERSION = 2;

export type Fill = GgufTensor["fill"];

export interface Qwen3Weights {
  readonly tokenEmbedding: Fill;
  /** Required exactly when the shape is untied. */
  readonly output?: Fill;
  /** Every other 2-D weight (attention and FFN projections), by tensor name. */
  matrix(name: string): Fill;
  /** RMS-norm weights by tensor name; all ones when omitted. */
  norm?(name: string): Fill;
}

export interface Qwen3ModelOptions {
  readonly name: string;
  readonly shape: Qwen3Shape;
  readonly weightType: WeightType;
  readonly weights: Qwen3Weights;
  /** Makes it an embedding model (Qwen3-Embedding-0.6B declares "last"); absent for chat models. */
  readonly pooling?: EmbeddingPooling;
}

function metadata(name: string, shape: Qwen3Shape, weightType: WeightType, pooling: EmbeddingPooling | undefined): Array<[string, GgufValue]> {
  return [
    ["general.architecture", gguf.string("qwen3")],
    ["general.type", gguf.string("model")],
    ["general.name", gguf.string(name)],
    ["qwen3.block_count", gguf.u32(shape.blockCount)],
    ["qwen3.context_length", gguf.u32(shape.contextLength)],
    ["qwen3.embedding_length", gguf.u32(shape.embeddingLength)],
    ["qwen3.feed_forward_length", gguf.u32(shape.feedForwardLength)],
    ["qwen3.attention.head_count", gguf.u32(shape.headCount)],
    ["qwen3.attention.head_count_kv", gguf.u32(shape.headCountKv)],
    ["qwen3.rope.freq_base", gguf.f32(shape.ropeFreqBase)],
    ["qwen3.attention.layer_norm_rms_epsilon", gguf.f32(shape.rmsNormEps)],
    ["qwen3.attention.key_length", gguf.u32(shape.headDim)],
    ["qwen3.attention.value_length", gguf.u32(shape.headDim)],
    ["general.file_type", gguf.u32(FILE_TYPE[weightType])],
    ["general.quantization_version", gguf.u32(QUANTIZATION_VERSION)],
    // Appended, not inserted: chat models keep their exact bytes (and cached test files).
    ...(pooling === undefined ? [] : [["qwen3.pooling_type", gguf.u32(POOLING_TYPE_IDS[pooling])] as [string, GgufValue]]),
  ];
}

const ones: Fill = (out) => out.fill(1);

function tensors(shape: Qwen3Shape, weightType: WeightType, weights: Qwen3Weights): GgufTensor[] {
  const type = weightGgmlType(weightType);
  const { embeddingLength: nEmbd, feedForwardLength: nFf, headDim } = shape;
  const nQ = headDim * shape.headCount;
  const nKv = headDim * shape.headCountKv;
  const matrix = (name: string, dims: [number, number]): GgufTensor => ({
    name,
    dims,
    type,
    fill: weights.matrix(name),
  });
  const norm = (name: string, length: number): GgufTensor => ({
    name,
    dims: [length],
    type: GgmlType.F32,
    fill: weights.norm?.(name) ?? ones,
  });

  const list: GgufTensor[] = [
    { name: "token_embd.weight", dims: [nEmbd, QWEN3_VOCAB_SIZE], type, fill: weights.tokenEmbedding },
  ];
  for (let i = 0; i < shape.blockCount; i++) {
    const blk = `blk.${i}`;
    list.push(
      norm(`${blk}.attn_norm.weight`, nEmbd),
      matrix(`${blk}.attn_q.weight`, [nEmbd, nQ]),
      matrix(`${blk}.attn_k.weight`, [nEmbd, nKv]),
      matrix(`${blk}.attn_v.weight`, [nEmbd, nKv]),
      matrix(`${blk}.attn_output.weight`, [nQ, nEmbd]),
      norm(`${blk}.attn_q_norm.weight`, headDim),
      norm(`${blk}.attn_k_norm.weight`, headDim),
      norm(`${blk}.ffn_norm.weight`, nEmbd),
      matrix(`${blk}.ffn_gate.weight`, [nEmbd, nFf]),
      matrix(`${blk}.ffn_up.weight`, [nEmbd, nFf]),
      matrix(`${blk}.ffn_down.weight`, [nFf, nEmbd]),
    );
  }
  list.push(norm("output_norm.weight", nEmbd));
  if (shape.tiedEmbeddings !== (weights.output === undefined)) {
    throw new Error("an output weight must be given exactly when embeddings are untied");
  }
  if (weights.output) {
    list.push({ name: "output.weight", dims: [nEmbd, QWEN3_VOCAB_SIZE], type, fill: weights.output });
  }
  return list;
}

export function qwen3Model({ name, shape, weightType, weights, pooling }: Qwen3ModelOptions): GgufFile {
  return {
    metadata: [...metadata(name, shape, weightType, pooling), ...qwen3TokenizerMetadata(loadQwen3Vocab())],
    tensors: tensors(shape, weightType, weights),
  };
}

/** Roughly the spread of real checkpoints' projections; keeps activations well inside f16 range. */
const WEIGHT_STD = 0.02;

/** A fresh generator per tensor, so each tensor's bytes depend only on (seed, name). */
function randomFill(seed: number, name: string): Fill {
  let rng: Rng | undefined;
  return (out) => {
    rng ??= new Rng(seed, name);
    rng.fillNormalish(out, WEIGHT_STD);
  };
}

/** With `pooling`, the same weights as the chat preset of that seed, declared an embedding model. */
export function randomQwen3Model(preset: Qwen3Preset, weightType: WeightType, seed: number, pooling?: EmbeddingPooling): GgufFile {
  const shape = QWEN3_PRESETS[preset];
  return qwen3Model({
    name: pooling === undefined ? `synthetic-${preset}` : `synthetic-${preset}-embedding`,
    shape,
    weightType,
    pooling,
    weights: {
      tokenEmbedding: randomFill(seed, "token_embd.weight"),
      ...(shape.tiedEmbeddings ? {} : { output: randomFill(seed, "output.weight") }),
      matrix: (name) => randomFill(seed, name),
    },
  });
}
