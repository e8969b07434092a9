/**
 * How many KV cells the context gets. `model.kvPoolTokens` is the whole pool when set. At 0 it
 * follows the pool mode: a unified pool gets `contextSize` cells, enough for one request of the
 * full context, which the sequences share (llama-server's `-np 4 --kv-unified` default, and the
 * 4096 cells Ollama gives a model with its default context and one parallel request); per-sequence
 * pools get `contextSize` cells each, since there a sequence can only ever use its own.
 */
import type { Config } from "../../config/schema.js";

export interface KvLayout {
  /** Cells of all sequences together. */
  poolTokens: number;
  /** What node-llama-cpp's createContext takes as contextSize (it multiplies by sequences). */
  contextPerSequence: number;
}

/** `unified`: whether the context gets one pool shared by its sequences (the unified-KV addon). */
export function kvLayout(model: Pick<Config["model"], "contextSize" | "sequences" | "kvPoolTokens">, unified: boolean): KvLayout {
  const poolTokens = model.kvPoolTokens > 0 ? model.kvPoolTokens : unified ? model.contextSize : model.contextSize * model.sequences;
  return { poolTokens, contextPerSequence: Math.ceil(poolTokens / model.sequences) };
}
