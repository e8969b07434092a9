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

export const ConfigSchema = Type.Object(
  {
    server: Type.Object(
      {
        host: Type.String({ minLength: 1 }),
        port: Type.Integer({ minimum: 0, maximum: 65535 }),
        bodyLimitBytes: Type.Integer({ minimum: 1024 }),
        sseHeartbeatMs: Type.Integer({ minimum: 0 }),
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
        kvCacheType: Type.Union([Type.Literal("f16"), Type.Literal("q8_0")]),
        loadTimeoutMs: Type.Integer({ minimum: 1000 }),
      },
      { additionalProperties: false },
    ),
    generation: Type.Object(
      {
        /** Cap on max_tokens when a request gives none. */
        defaultMaxTokens: Type.Integer({ minimum: 1 }),
        /** Thinking on or off when a request does not say (models whose template supports it). */
        enableThinking: Type.Boolean(),
        samplingThinking: Sampling,
        samplingNonThinking: Sampling,
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
