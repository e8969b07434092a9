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
  | { type: "init"; engine: EngineOptions }
  | { type: "generate"; id: number; request: GenerationRequest }
  | { type: "cancel"; id: number }
  | { type: "status"; id: number; drainRounds: boolean }
  | { type: "text_op"; id: number; op: TextOp }
  /** Cancelled like a generation, by `cancel` with the same id. */
  | { type: "embed"; id: number; request: EmbeddingRequest }
  | { type: "shutdown" };

export type WorkerToMain =
  | { type: "ready"; info: ModelInfo }
  | { type: "load_failed"; message: string }
  | { type: "event"; id: number; event: GenerationEvent }
  | { type: "status"; id: number; status: EngineStatus }
  | ({ type: "text_op"; id: number } & ({ result: TextOpResult } | { error: EngineErrorInfo }))
  | ({ type: "embeddings"; id: number } & ({ result: EmbeddingResult } | { error: EngineErrorInfo }))
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; msg: string; fields?: Record<string, unknown> };
