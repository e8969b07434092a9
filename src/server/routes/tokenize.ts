/**
 * llama-server's tokenizer routes: POST /tokenize, /detokenize and /apply-template, same shapes.
 * `model` picks the model as in chat and may be left out while one model is served.
 */
import type { FastifyPluginAsync } from "fastify";
import { Type, type Static } from "@sinclair/typebox";
import type { ServerDeps } from "../deps.js";
import { ChatCompletionRequest } from "../../openai/schema.js";
import { normalizeChatRequest } from "../../openai/normalize.js";

const Model = Type.Optional(Type.String({ description: "a model id from /v1/models" }));

const TokenizeRequest = Type.Object(
  {
    model: Model,
    content: Type.String({ description: "the text to tokenize" }),
    add_special: Type.Optional(Type.Boolean({ description: "a boolean" })),
    parse_special: Type.Optional(Type.Boolean({ description: "a boolean" })),
    with_pieces: Type.Optional(Type.Boolean({ description: "a boolean" })),
  },
  { additionalProperties: true },
);

const DetokenizeRequest = Type.Object(
  {
    model: Model,
    tokens: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 1_000_000, description: "an array of token ids" }),
  },
  { additionalProperties: true },
);

export const tokenizeRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.post<{ Body: Static<typeof TokenizeRequest> }>("/tokenize", { schema: { body: TokenizeRequest } }, async (req) => {
    // llama-server's defaults: no BOS added, special-token text parsed as the special tokens.
    const { model, content, add_special = false, parse_special = true, with_pieces = false } = req.body;
    const op = { kind: "tokenize", text: content, addSpecial: add_special, parseSpecial: parse_special, withPieces: with_pieces } as const;
    const { tokens, pieces } = await registry.resolve(model).textOp(op);
    return { tokens: pieces ? tokens.map((id, i) => ({ id, piece: pieces[i] })) : tokens };
  });

  app.post<{ Body: Static<typeof DetokenizeRequest> }>("/detokenize", { schema: { body: DetokenizeRequest } }, async (req) => {
    const { content } = await registry.resolve(req.body.model).textOp({ kind: "detokenize", tokens: req.body.tokens });
    return { content };
  });

  app.post<{ Body: ChatCompletionRequest }>("/apply-template", { schema: { body: ChatCompletionRequest } }, async (req) => {
    const worker = registry.resolve(req.body.model);
    const { prompt } = await worker.textOp({ kind: "apply_template", request: normalizeChatRequest(req.body, req.id) });
    return { prompt };
  });
};
