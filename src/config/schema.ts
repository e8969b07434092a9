/**
 * The one typed configuration. Every key has a default in config/default.yaml; this schema
 * validates the merged result (defaults < --config file < EDGELLM_* env < CLI flags).
 */
import { Type, type Static } from "@sinclair/typebox";

const Sampling = Type.Object(
  {
    temperature: Type.Number({ minimum: 0, maximum: 2 }),
    topP: Type.Number({ minimum: 0, maximum: 1 }),
    topK: Type.Integer({ minimum: 0 }),
    minP: Type.Number({ minimum: 0, maximum: 1 }),
  },
  { additionalProperties: false },
);
export type SamplingDefaults = Static<typeof Sampling>;

/** One `models:` entry: an id, a source and the `model.*` settings it changes for that model. */
const ModelEntry = Type.Object(
  {
    id: Type.String({ minLength: 1, pattern: "^[^/\\s]+$" }),
    /** A .gguf path (relative ones are tried in model.dir too), an `hf:` URI or `synthetic:<preset>[:quant]`. */
    source: Type.String({ minLength: 1 }),
    /** Smaller variants of the same model, best first, swapped in under sustained memory pressure. */
    fallbacks: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    contextSize: Type.Optional(Type.Integer({ minimum: 64 })),
    sequences: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    kvCacheType: Type.Optional(Type.Union([Type.Literal("f16"), Type.Literal("q8_0")])),
    kvPoolTokens: Type.Optional(Type.Integer({ minimum: 0 })),
    threads: Type.Optional(Type.Integer({ minimum: 0, maximum: 256 })),
    prefixReuse: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ModelEntry = Static<typeof ModelEntry>;

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        bodyLimitBytes: Type.Integer({ minimum: 1024 }),
        sseHeartbeatMs: Type.Integer({ minimum: 0 }),
        /** On SIGTERM/SIGINT, how long in-flight requests may run before they are cut off. */
        shutdownGraceMs: Type.Integer({ minimum: 0 }),
        /** Accepted API keys; none (and no apiKeyFile) = no authentication. */
        apiKeys: Type.Array(Type.String({ minLength: 1 })),
        /** File with one API key per line (blank lines and `#` comments ignored), read at start. */
        apiKeyFile: Type.String(),
        /** Paths served without an API key. */
        publicPaths: Type.Array(Type.String({ pattern: "^/" })),
        /** Browser origins allowed by CORS; empty = CORS off, ["*"] = any origin. */
        corsOrigins: Type.Array(Type.String({ minLength: 1 })),
        /** Serve the web playground at `/`; the API (conversations included) is there either way. */
        ui: Type.Boolean(),
        /** Where the conversations database and the memory estimates (estimates/) live; "" = `data/` beside model.dir. */
        dataDir: Type.String(),
      },
      { additionalProperties: false },
    ),
    model: Type.Object(
      {
        /** Path to a .gguf file, an `hf:` URI, `synthetic:<preset>[:quant]`, or "" for the offline demo model. */
        source: Type.String(),
        /** Served model id; "" means the file name without `.gguf`. */
        alias: Type.String(),
        /** Where pulled and synthesized models live. */
        dir: Type.String({ minLength: 1 }),
        /** Tokens per sequence. */
        contextSize: Type.Integer({ minimum: 64 }),
        /** Concurrent sequences (slots). */
        sequences: Type.Integer({ minimum: 1, maximum: 64 }),
        /** Decode threads; 0 = number of cores. */
        threads: Type.Integer({ minimum: 0, maximum: 256 }),
        batchSize: Type.Integer({ minimum: 16 }),
        /** Prompt tokens a round evaluates while streams decode (all prompts together, oldest first), so a long prompt does not stall them. */
        prefillChunk: Type.Integer({ minimum: 16 }),
        /**
         * "first-come": prompts share prefillChunk tokens a round while streams decode and finish one
         * per round (fast first tokens); "together": llama-server's scheduling, every waiting prompt
         * in the next round (up to 2,048 tokens), all finishing in it (streams in step).
         */
        prefillScheduling: Type.Union([Type.Literal("first-come"), Type.Literal("together")]),
        kvCacheType: Type.Union([Type.Literal("f16"), Type.Literal("q8_0")]),
        /**
         * "unified": one KV cell pool shared by all sequences (needs the addon built by
         * `npm run build:addon`); "per-sequence": every sequence reserves contextSize cells (the
         * prebuilt addon); "auto": unified when that addon is built, else per-sequence.
         */
        kvPool: Type.Union([Type.Literal("auto"), Type.Literal("unified"), Type.Literal("per-sequence")]),
        /**
         * KV cells of all sequences together; 0 = contextSize in a unified pool (shared by the
         * sequences), contextSize x sequences in per-sequence pools (src/engine/kv/layout.ts). A unified
         * pool lets one request grow into all of it, per-sequence pools split it evenly; contextSize bounds a request in both.
         */
        kvPoolTokens: Type.Integer({ minimum: 0 }),
        /** Tokens per KV page: the unit of admission, prefix sharing and eviction. */
        kvPageTokens: Type.Integer({ minimum: 1, maximum: 1024 }),
        /** Reuse cached prompt prefixes across requests (off only to measure what it gains). */
        prefixReuse: Type.Boolean(),
        loadTimeoutMs: Type.Integer({ minimum: 1000 }),
        /**
         * V8 heap limit of the model worker process (--max-old-space-size); 0 = V8's default, which
         * on a large host lets garbage pile up for gigabytes between collections.
         */
        workerHeapMB: Type.Integer({ minimum: 0 }),
        /**
         * Transparent huge pages for the worker's large native buffers (KV cache, repacked weights,
         * compute): glibc's `glibc.malloc.hugetlb=1` in the worker's GLIBC_TUNABLES.
         */
        hugePages: Type.Boolean(),
        /**
         * Keep llama.cpp's repacked weights (the CPU kernels' layout of q4_0 on x86, of most
         * quantized types on ARM) in `repack/` of the data directory, and map them on later loads
         * instead of repacking (repack-cache.ts).
         */
        repackCache: Type.Boolean(),
        /** Refuse to load when weights + KV + compute buffers are estimated above this; 0 = the machine's available memory. */
        memoryBudgetMB: Type.Integer({ minimum: 0 }),
        /**
         * LoRA adapters served with the model: id (default: file name without .gguf), GGUF path,
         * default scale (1); or "[id=]path" (what --lora and EDGELLM_MODEL_LORA give).
         */
        lora: Type.Array(
          Type.Union([
            Type.String({ minLength: 1 }),
            Type.Object(
              {
                id: Type.Optional(Type.String({ minLength: 1 })),
                path: Type.String({ minLength: 1 }),
                scale: Type.Optional(Type.Number()),
              },
              { additionalProperties: false },
            ),
          ]),
        ),
        /** Models resident at once; loading one more unloads the least recently used idle one. */
        maxLoaded: Type.Integer({ minimum: 1 }),
        /** Seconds an idle model stays loaded when its last request gave no keep_alive; 0 = until evicted. */
        idleUnloadSec: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    /** Models served besides `model.source` and the `.gguf` files in `model.dir`, each with its own settings. */
    models: Type.Array(ModelEntry),
    /** The memory-pressure watch that swaps models with fallbacks to smaller variants (only runs when a model names fallbacks). */
    pressure: Type.Object(
      {
        /** Sampling period of the pressure source. */
        intervalMs: Type.Integer({ minimum: 10 }),
        /** Pressure must last this long before models step down. */
        sustainMs: Type.Integer({ minimum: 0 }),
        /** Calm must last this long before they swap back (hysteresis). */
        reliefMs: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    generation: Type.Object(
      {
        /** Cap on max_tokens when a request gives none. */
        defaultMaxTokens: Type.Integer({ minimum: 1 }),
        /** Thinking on or off when a request does not say (models whose template supports it). */
        enableThinking: Type.Boolean(),
        /** Thought tokens before the engine closes the thought itself, when a request gives no budget; 0 = unlimited. */
        thinkingBudget: Type.Integer({ minimum: 0 }),
        /** Where reasoning goes when a request does not say: its own field ("separate") or `<think>…</think>` inside content ("inline"). */
        reasoningFormat: Type.Union([Type.Literal("separate"), Type.Literal("inline")]),
        /** Also send separate reasoning as `reasoning` (vLLM / Ollama name) next to `reasoning_content`. */
        reasoningAlias: Type.Boolean(),
        samplingThinking: Sampling,
        samplingNonThinking: Sampling,
      },
      { additionalProperties: false },
    ),
    /** Per-request bounds; a request over one is a 400 naming the parameter (429 for concurrency). */
    limits: Type.Object(
      {
        maxMessages: Type.Integer({ minimum: 1 }),
        /** Prompt tokens after the chat template; 0 = only the context size bounds it. */
        maxPromptTokens: Type.Integer({ minimum: 0 }),
        /** Largest max_tokens / max_completion_tokens a request may ask for. */
        maxCompletionTokens: Type.Integer({ minimum: 1 }),
        maxN: Type.Integer({ minimum: 1 }),
        maxStopStrings: Type.Integer({ minimum: 0 }),
        maxStopLength: Type.Integer({ minimum: 1 }),
        maxTools: Type.Integer({ minimum: 0 }),
        /** Bytes of one tool's `parameters` JSON schema. */
        maxToolSchemaBytes: Type.Integer({ minimum: 2 }),
        /** Nesting depth of the JSON body: deep documents would overflow the stack later (serialization, templates). */
        maxJsonDepth: Type.Integer({ minimum: 2 }),
        /** Generation (streaming or not) and embedding requests one client IP may have in flight; 0 = unlimited. */
        maxConcurrentRequestsPerClient: Type.Integer({ minimum: 0 }),
        /** Requests waiting for a sequence before new ones get 429; 0 = unbounded. */
        maxQueuedRequests: Type.Integer({ minimum: 0 }),
        /** Prompt tokens waiting for a sequence before new requests get 429; 0 = unbounded. */
        maxQueuedTokens: Type.Integer({ minimum: 0 }),
        /** Wall-clock deadline of one generation request, queueing included; 0 = none. */
        requestTimeoutMs: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    responses: Type.Object(
      {
        /** Stored /v1/responses kept in the SQLite store for GET and previous_response_id; the least recently used go first. 0 = none kept. */
        maxStored: Type.Integer({ minimum: 0 }),
        /** Size bound of the stored responses (their conversations counted whole), in MiB. */
        maxStoredMB: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    log: Type.Object(
      {
        level: Type.Union(["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l))),
        pretty: Type.Union([Type.Literal("auto"), Type.Boolean()]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;
