/**
 * Synthetic model files for tests, cached under models/test-cache/ (gitignored) by a hash of
 * their spec, so every test file and run after the first reuses them.
 */
import { fileURLToPath } from "node:url";
import {
  ensureScriptedLora,
  ensureSyntheticModel,
  type EmbeddingPooling,
  type Qwen3Preset,
  type ScriptSegment,
  type ScriptedModelSpec,
  type WeightType,
} from "../../src/models/synthetic/index.js";

export const TEST_MODEL_DIR = fileURLToPath(new URL("../../models/test-cache/", import.meta.url));

/** Random-weight 2-layer qwen3 with the real Qwen3 tokenizer and chat template; a few MB. */
export function tinyModel(quant: WeightType = "q8_0"): Promise<string> {
  return presetModel("tiny", quant);
}

export function presetModel(preset: Qwen3Preset, quant: WeightType = "q8_0", seed?: number): Promise<string> {
  return ensureSyntheticModel({ kind: "preset", preset, quant, ...(seed === undefined ? {} : { seed }) }, TEST_MODEL_DIR);
}

export type ScriptedModelOptions = Omit<ScriptedModelSpec, "kind" | "segments">;

/**
 * A model that, after a prompt ending in "\n" or "\n\n" (a rendered Qwen3 generation prompt,
 * thinking on or off), replies exactly `segments` and then <|im_end|>. Use `{ token: "<think>" }`
 * etc. for added tokens; `loop: true` makes it repeat forever.
 */
export function scriptedModel(segments: readonly ScriptSegment[], options: ScriptedModelOptions = {}): Promise<string> {
  return ensureSyntheticModel({ kind: "scripted", segments, ...options }, TEST_MODEL_DIR);
}

/**
 * An embedding model: the weights of `presetModel(preset, quant)` (the same seed) with
 * `qwen3.pooling_type` set, as Qwen3-Embedding-0.6B declares "last". The chat preset is its
 * twin without pooling, so tests can compute the expected vectors through it independently.
 */
export function embeddingModel(pooling: EmbeddingPooling, preset: Qwen3Preset = "tiny", quant: WeightType = "q8_0"): Promise<string> {
  return ensureSyntheticModel({ kind: "preset", preset, quant, pooling }, TEST_MODEL_DIR);
}

/** The scripted LoRA pair tests share: the base model says BASE_REPLY, with the adapter ADAPTER_REPLY. */
export const LORA_BASE_REPLY = "Hello! I am the base model.";
export const LORA_ADAPTER_REPLY = "Ahoy! The adapter speaks now, matey.";

export function scriptedLoraModel(): Promise<{ model: string; adapter: string }> {
  return ensureScriptedLora({ segments: [LORA_BASE_REPLY], adapterSegments: [LORA_ADAPTER_REPLY] }, TEST_MODEL_DIR);
}
