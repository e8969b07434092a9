/**
 * How many KV cells the context gets, in either pool mode. `model.kvPoolTokens` (or, when 0,
 * contextSize x sequences) is the whole pool: the memory is the same in both modes, only what
 * one request may hold differs (all of it in a unified pool, its own share otherwise).
 */
import type { Config } from "../../config/schema.js";

export interface KvLayout {
  /** Cells of all sequences together. */
  poolTokens: number;
  /** What node-llama-cpp's createContext takes as contextSize (it multiplies by sequences). */
  contextPerSequence: number;
}

export function kvLayout(model: Pick<Config["model"], "contextSize" | "sequences" | "kvPoolTokens">): KvLayout {
  const poolTokens = model.kvPoolTokens > 0 ? model.kvPoolTokens : model.contextSize * model.sequences;
  return { poolTokens, contextPerSequence: Math.ceil(poolTokens / model.sequences) };
}
