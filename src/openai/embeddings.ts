/**
 * /v1/embeddings on the wire: OpenAI's four input forms (a string, strings, token ids, arrays of
 * token ids), float or base64 vectors, and the checks that need no model.
 */
import { Type, type Static } from "@sinclair/typebox";
import { invalidRequest } from "./errors.js";

/** OpenAI's bound on the inputs of one request. */
const MAX_INPUTS = 2048;
const TokenIds = Type.Array(Type.Integer({ minimum: 0 }), { description: "an array of token ids" });

export const EmbeddingRequestBody = Type.Object(
  {
    model: Type.Optional(Type.String({ description: "a model id from /v1/models" })),
    input: Type.Union(
      [Type.String(), Type.Array(Type.String(), { maxItems: MAX_INPUTS }), TokenIds, Type.Array(TokenIds, { maxItems: MAX_INPUTS })],
      { description: `a string, an array of strings, an array of token ids, or an array of token-id arrays (at most ${MAX_INPUTS} inputs)` },
    ),
    encoding_format: Type.Optional(
      Type.Union([Type.Literal("float"), Type.Literal("base64"), Type.Null()], { description: "'float' or 'base64'" }),
    ),
    dimensions: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: "an integer >= 1" })),
    user: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "a string" })),
  },
  { additionalProperties: true },
);
export type EmbeddingRequestBody = Static<typeof EmbeddingRequestBody>;

/** Every input as a text or a token-id array; empty inputs are refused (they have no vector). */
export function embeddingInputs(body: EmbeddingRequestBody): Array<string | number[]> {
  // GGUF files carry no Matryoshka declaration, so no served model can truncate its vectors.
  if (body.dimensions !== undefined && body.dimensions !== null) {
    throw invalidRequest(
      "'dimensions' is not supported: this server's models return their full embedding size and do not support " +
        "Matryoshka truncation; leave 'dimensions' out",
      "dimensions",
      "unsupported_parameter",
    );
  }
  const { input } = body;
  const inputs: Array<string | number[]> =
    typeof input === "string" ? [input] : input.length > 0 && typeof input[0] === "number" ? [input as number[]] : (input as Array<string | number[]>);
  if (inputs.length === 0) throw invalidRequest("'input' is empty; give a string or a non-empty array", "input", "empty_input");
  const empty = inputs.findIndex((i) => i.length === 0);
  if (empty !== -1) {
    const what = typeof inputs[empty] === "string" ? "an empty string" : "an empty token array";
    throw invalidRequest(`input[${empty}] is ${what}; every input needs at least one token`, "input", "empty_input");
  }
  return inputs;
}

export interface EmbeddingList {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** base64 is the bytes of little-endian float32s, what the `openai` SDKs decode. */
export function embeddingList(model: string, vectors: number[][], promptTokens: number, format: "float" | "base64"): EmbeddingList {
  return {
    object: "list",
    data: vectors.map((v, index) => ({ object: "embedding", index, embedding: format === "base64" ? toBase64Float32(v) : v })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

function toBase64Float32(vector: number[]): string {
  const view = new DataView(new ArrayBuffer(vector.length * 4));
  vector.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(view.buffer).toString("base64");
}
