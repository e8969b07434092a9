/**
 * Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens. Requests are
 * translated into chat requests and run on the chat path (admission, engine, assembler); only
 * the wire format differs. Encapsulated, so its error handler answers Anthropic error objects
 * (validation, auth and limits included) while every other route keeps OpenAI's.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ServerDeps } from "../deps.js";
import { CountTokensRequest, KNOWN_MESSAGES_FIELDS, MessagesRequest } from "../../anthropic/schema.js";
import { toChatPrompt, toChatRequest } from "../../anthropic/translate.js";
import { anthropicErrorBody } from "../../anthropic/errors.js";
import { contentBlocks, message, messageUsage, stopReason, type MessageIds } from "../../anthropic/message.js";
import { MessageEvents } from "../../anthropic/events.js";
import { normalizeChatRequest, responseOptions } from "../../openai/normalize.js";
import { clientClosed } from "../../openai/errors.js";
import { httpError } from "../engine-errors.js";
import { ChoiceAssembler } from "../../openai/assembler.js";
import { admitRequests, requestAdapters, type AdmittedRequest } from "../admission.js";
import { errorHandler } from "../error-handler.js";
import type { GenerationEvent } from "../../engine/types.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";

type Done = Extract<GenerationEvent, { type: "done" }>;

interface MessageRun {
  req: FastifyRequest;
  ids: MessageIds;
  choice: AdmittedRequest;
  assembler: ChoiceAssembler;
  observer: RequestMetrics;
}

export const messagesRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry, config, metrics }) => {
  app.setErrorHandler(errorHandler(metrics, anthropicErrorBody));
  // Anthropic's header for the request id: the SDK exposes it as `_request_id`.
  app.addHook("onRequest", async (req, reply) => {
    reply.header("request-id", req.id);
  });

  app.post<{ Body: MessagesRequest }>("/v1/messages", { schema: { body: MessagesRequest }, sse: "manual", config: { modelWork: true } }, async (req, reply) => {
    const body = req.body;
    const ignored = Object.keys(body).filter((k) => !KNOWN_MESSAGES_FIELDS.has(k));
    if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
    const worker = registry.resolve(body.model);
    const chat = toChatRequest(body);
    // Anthropic's wire format has no `lora` field; a `<model>:<adapter>` model id selects one.
    const { adapters, model } = requestAdapters(worker, { model: body.model });
    const request = { ...normalizeChatRequest(chat, req.id), adapters };
    const observer = new RequestMetrics(metrics, worker.id);
    const admitted = await admitRequests(worker, [request], reply, () => observer.disconnected(), {
      stream: body.stream === true,
      body,
      errorEvent: (err) => MessageEvents.error(anthropicErrorBody(err)),
    });
    if (!admitted) return;
    const choice = admitted[0]!;
    observer.accepted(choice.started.promptTokens);
    req.summary = observer.summary;
    // Anthropic shows thoughts as their own blocks, whatever the server's OpenAI reasoning format.
    const presentation = { ...responseOptions(chat, config.generation), returnReasoning: true, reasoningFormat: "separate" as const, reasoningAlias: false };
    const { thinking, startsInReasoning } = choice.started;
    const gen: MessageRun = {
      req,
      ids: { id: `msg_${req.id.replace(/^req-/, "")}`, model },
      choice,
      assembler: new ChoiceAssembler({ ...presentation, thinking, startsInReasoning }),
      observer,
    };
    return body.stream ? streamMessage(gen, reply) : collectMessage(gen);
  });

  app.post<{ Body: CountTokensRequest }>("/v1/messages/count_tokens", { schema: { body: CountTokensRequest } }, async (req) => {
    const worker = registry.resolve(req.body.model);
    const { prompt } = await worker.textOp({ kind: "apply_template", request: normalizeChatRequest(toChatPrompt(req.body), req.id) });
    // Tokenized as the engine tokenizes a rendered prompt: special-token text is the special token, no BOS added.
    const { tokens } = await worker.textOp({ kind: "tokenize", text: prompt, addSpecial: false, parseSpecial: true, withPieces: false });
    return { input_tokens: tokens.length };
  });
};

/** The stop reason and usage of a finished generation; the reasoning trace goes to the debug log only. */
function finished({ req, choice, assembler, observer }: MessageRun, ev: Done) {
  const finish = assembler.finishReason(ev.finishReason);
  observer.prefix(choice.started.promptTokens, ev.cachedTokens);
  observer.choiceFinished({ ...ev, finishReason: finish });
  observer.completed();
  if (assembler.reasoningText) req.log.debug({ reasoning: assembler.reasoningText }, "reasoning trace");
  return {
    reason: stopReason(finish, ev.stopSequence),
    sequence: ev.stopSequence ?? null,
    usage: messageUsage(choice.started.promptTokens, ev.cachedTokens, ev.completionTokens),
  };
}

async function collectMessage(gen: MessageRun) {
  const { choice, assembler, observer } = gen;
  for await (const ev of choice.stream) {
    if (ev.type === "text") {
      observer.tokens(ev.tokens);
      assembler.push(ev.text);
    } else if (ev.type === "done") {
      assembler.finish();
      const { reason, sequence, usage } = finished(gen, ev);
      return message(gen.ids, contentBlocks(assembler.message()), { reason, sequence }, usage);
    } else if (ev.type === "failed") throw httpError(ev.error);
  }
  // The stream ends without `done` only when cancelled: the client is gone and reads nothing.
  throw clientClosed();
}

async function streamMessage(gen: MessageRun, reply: FastifyReply) {
  const { req, choice, assembler, observer } = gen;
  reply.header("x-accel-buffering", "no");
  const blocks = new MessageEvents(gen.ids);
  async function* events() {
    yield* blocks.start(choice.started.promptTokens);
    for await (const ev of choice.stream) {
      if (ev.type === "text") {
        observer.tokens(ev.tokens);
        yield* blocks.deltas(assembler.push(ev.text));
      } else if (ev.type === "done") {
        yield* blocks.deltas(assembler.finish());
        const { reason, sequence, usage } = finished(gen, ev);
        yield* blocks.finish(reason, sequence, usage);
      } else if (ev.type === "failed") {
        // After the headers an error can only be an event; the error handler never sees it.
        const err = httpError(ev.error);
        observer.failed(err.code ?? "internal_error");
        req.log.warn({ code: err.code }, "generation failed mid-stream");
        yield MessageEvents.error(anthropicErrorBody(err));
      }
    }
  }
  await reply.sse.send(events());
}
