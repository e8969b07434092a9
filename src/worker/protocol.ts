/** Every message between the main process and a model worker process. */
import type {
  EmbeddingRequest,
  EmbeddingResult,
  EngineOptions,
  EngineStatus,
  GenerationEvent,
  GenerationRequest,
  ModelInfo,
  TextOp,
  TextOpResult,
} from "../engine/types.js";
import type { EngineErrorInfo } from "../engine/errors.js";

export type MainToWorker =
  /** `adapters`: the LoRA adapter files (absolute paths) the model serves now, loaded before it is ready. */
  | { type: "init"; engine: EngineOptions; adapters: string[] }
  | { type: "generate"; id: number; request: GenerationRequest }
  | { type: "cancel"; id: number }
  | { type: "status"; id: number; drainRounds: boolean }
  | { type: "text_op"; id: number; op: TextOp }
  /** Cancelled like a generation, by `cancel` with the same id. */
  | { type: "embed"; id: number; request: EmbeddingRequest }
  /** Load a LoRA adapter file so requests can use it; answered by `adapter_load`. */
  | { type: "adapter_load"; id: number; path: string }
  /** Requests can no longer use the adapter; the worker frees it once those running end. */
  | { type: "adapter_unload"; path: string }
  | { type: "shutdown" };

export type WorkerToMain =
  | { type: "ready"; info: ModelInfo }
  | { type: "load_failed"; message: string }
  | { type: "event"; id: number; event: GenerationEvent }
  | { type: "status"; id: number; status: EngineStatus }
  | ({ type: "text_op"; id: number } & ({ result: TextOpResult } | { error: EngineErrorInfo }))
  | ({ type: "embeddings"; id: number } & ({ result: EmbeddingResult } | { error: EngineErrorInfo }))
  | ({ type: "adapter_load"; id: number } & ({ result: null } | { error: EngineErrorInfo }))
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; msg: string; fields?: Record<string, unknown> };
