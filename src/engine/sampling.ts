/** Maps request sampling fields onto node-llama-cpp, filling gaps with the model's recommended values. */
import { randomInt } from "node:crypto";
import type { SequenceEvaluateOptions, Token } from "node-llama-cpp";

/** How many recent completion tokens penalties look at (llama.cpp's repeat_last_n default). */
const PENALTY_WINDOW = 64;
import type { SamplingParams } from "./types.js";
import type { SamplingDefaults } from "../config/schema.js";

export function resolveSampling(req: SamplingParams, defaults: SamplingDefaults): Required<SamplingParams> {
  return {
    temperature: req.temperature ?? defaults.temperature,
    topP: req.topP ?? defaults.topP,
    topK: req.topK ?? defaults.topK,
    minP: req.minP ?? defaults.minP,
    // node-llama-cpp would seed with the current second; a request without a seed gets a fresh one.
    seed: req.seed ?? randomInt(0, 2 ** 31),
    presencePenalty: req.presencePenalty ?? 0,
    frequencyPenalty: req.frequencyPenalty ?? 0,
    repeatPenalty: req.repeatPenalty ?? 1,
  };
}

/** `recentTokens` are the completion tokens so far: the ones penalties apply to. */
export function buildEvaluateOptions(s: Required<SamplingParams>, recentTokens: () => number[]): SequenceEvaluateOptions {
  const penalize = s.presencePenalty !== 0 || s.frequencyPenalty !== 0 || s.repeatPenalty !== 1;
  return {
    temperature: s.temperature,
    topP: s.topP,
    // OpenAI-style "disabled" values (0 / -1) mean no top-k cut.
    topK: s.topK > 0 ? s.topK : 0,
    minP: s.minP,
    seed: s.seed >>> 0,
    ...(penalize && {
      repeatPenalty: {
        penalty: s.repeatPenalty,
        presencePenalty: s.presencePenalty,
        frequencyPenalty: s.frequencyPenalty,
        punishTokens: () => recentTokens().slice(-PENALTY_WINDOW) as Token[],
      },
    }),
  };
}
