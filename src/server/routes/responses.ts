/**
 * POST /v1/responses (OpenAI Responses API) on the chat path: the request is translated into a
 * chat request, admitted like chat, split by the same assembler, and written as Responses output
 * items, JSON or SSE with OpenAI's event names. GET and DELETE /v1/responses/{id} read the store.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { StoreDeps } from "../deps.js";
import { ResponsesRequest, type InputItem } from "../../openai/responses-schema.js";
import { asResponsesError, inputItems, toChatRequest } from "../../openai/responses-input.js";
import {
  requestEcho,
  responseId,
  responseObject,
  responsesUsage,
  ResponseOutputBuilder,
  type ResponseHead,
  type ResponseObject,
  type ResponsesEvent,
} from "../../openai/responses.js";
import { normalizeChatRequest, responseOptions } from "../../openai/normalize.js";
import { ApiError, clientClosed } from "../../openai/errors.js";
import { asHttpError, httpError } from "../engine-errors.js";
import { ChoiceAssembler } from "../../openai/assembler.js";
import { admitRequests, requestAdapters } from "../admission.js";
import { checkBodyLimits } from "../plugins/limits.js";
import { ResponseStore } from "../response-store.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";
import type { RequestHandle } from "../../router/request-handle.js";
import type { GenerationEvent } from "../../engine/types.js";

/** Reasoning always goes into reasoning items, whatever chat's presentation defaults are. */
const REASONING_ITEMS = { reasoningFormat: "separate", reasoningAlias: false } as const;

const responseNotFound = (id: string, param: string | null = null) =>
  new ApiError(404, "not_found_error", `${param ? "Previous response" : "Response"} with id '${id}' not found`, {
    param,
    code: param ? "previous_response_not_found" : "response_not_found",
  });

interface Run {
  req: FastifyRequest;
  stream: RequestHandle;
  promptTokens: number;
  assembler: ChoiceAssembler;
  builder: ResponseOutputBuilder;
  head: ResponseHead;
  observer: RequestMetrics;
  /** Input items of this response, earlier turns included: what previous_response_id continues. */
  conversation: InputItem[];
  store: ResponseStore | undefined;
}

export const responsesRoutes: FastifyPluginAsync<StoreDeps> = async (app, { registry, config, metrics, db }) => {
  const store = new ResponseStore(db, config.responses.maxStored, config.responses.maxStoredMB * 1024 * 1024);

  /** Everything that can be refused, decided before a header is sent. */
  async function start(req: FastifyRequest<{ Body: ResponsesRequest }>, reply: FastifyReply): Promise<Run | null> {
    const body = req.body;
    const previousId = body.previous_response_id;
    const previous = previousId == null ? undefined : store.get(previousId);
    if (previousId != null && !previous) throw responseNotFound(previousId, "previous_response_id");
    const worker = registry.resolve(body.model);
    const history = previous ? [...previous.conversation, ...previous.response.output] : [];
    const conversation = [...history, ...inputItems(body.input)];
    const chat = toChatRequest(body, conversation, history.length);
    checkBodyLimits(chat, config.limits);
    const observer = new RequestMetrics(metrics, worker.id);
    const { adapters, model } = requestAdapters(worker, body);
    const admitted = await admitRequests(worker, [{ ...normalizeChatRequest(chat, req.id), adapters }], reply, () => observer.disconnected(), {
      stream: body.stream === true,
      body,
    });
    if (!admitted) return null;
    const { stream, started } = admitted[0]!;
    observer.accepted(started.promptTokens);
    req.summary = observer.summary;
    const options = responseOptions(chat, REASONING_ITEMS);
    return {
      req,
      stream,
      promptTokens: started.promptTokens,
      assembler: new ChoiceAssembler({ ...options, thinking: started.thinking, startsInReasoning: started.startsInReasoning }),
      builder: new ResponseOutputBuilder(),
      head: { id: responseId(), created_at: Math.floor(Date.now() / 1000), model, echo: requestEcho(body) },
      observer,
      conversation,
      store: body.store === false ? undefined : store,
    };
  }

  app.post<{ Body: ResponsesRequest }>("/v1/responses", { schema: { body: ResponsesRequest }, sse: "manual", config: { modelWork: true } }, async (req, reply) => {
    const ignored = Object.keys(req.body).filter((k) => !(k in ResponsesRequest.properties));
    if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
    const run = await start(req, reply).catch((err: unknown) => {
      throw asResponsesError(asHttpError(err));
    });
    if (!run) return;
    return req.body.stream ? streamResponse(run, reply) : collectResponse(run);
  });

  app.get<{ Params: { id: string } }>("/v1/responses/:id", async (req) => {
    const entry = store.get(req.params.id);
    if (!entry) throw responseNotFound(req.params.id);
    return entry.response;
  });

  app.delete<{ Params: { id: string } }>("/v1/responses/:id", async (req) => {
    if (!store.delete(req.params.id)) throw responseNotFound(req.params.id);
    return { id: req.params.id, object: "response", deleted: true };
  });
};

/** The calls the assembler kept: an announced block that turned out unusable is not one. */
const keptCallIds = (run: Run) => new Set((run.assembler.message().tool_calls ?? []).map((c) => c.id));

/** Feeds one engine event; at the end also returns the finished response (stored if asked). */
function advance(run: Run, ev: Exclude<GenerationEvent, { type: "started" | "failed" }>): { events: ResponsesEvent[]; final?: ResponseObject } {
  const { assembler, builder, observer } = run;
  if (ev.type === "text") {
    observer.tokens(ev.tokens);
    return { events: builder.apply(assembler.push(ev.text)) };
  }
  const events = builder.apply(assembler.finish());
  const finishReason = assembler.finishReason(ev.finishReason);
  observer.prefix(run.promptTokens, ev.cachedTokens);
  observer.choiceFinished({ ...ev, finishReason });
  if (assembler.reasoningText) run.req.log.debug({ reasoning: assembler.reasoningText }, "reasoning trace");
  const status = finishReason === "length" ? "incomplete" : "completed";
  const finished = builder.finish(status, keptCallIds(run));
  const usage = responsesUsage(run.promptTokens, ev.completionTokens, ev.cachedTokens, ev.reasoningTokens);
  const final = responseObject(run.head, { status, output: finished.output, usage });
  run.store?.put({ response: final, conversation: run.conversation });
  observer.completed();
  return { events: [...events, ...finished.events], final };
}

async function collectResponse(run: Run): Promise<ResponseObject> {
  for await (const ev of run.stream) {
    if (ev.type === "failed") throw httpError(ev.error);
    if (ev.type === "started") continue;
    const { final } = advance(run, ev);
    if (final) return final;
  }
  // The stream ends without `done` only when it was cancelled: the client hung up.
  throw clientClosed();
}

async function streamResponse(run: Run, reply: FastifyReply): Promise<void> {
  const { builder, head } = run;
  reply.header("x-accel-buffering", "no");
  const sse = (e: ResponsesEvent) => ({ event: e.type, data: e });
  async function* events() {
    const created = responseObject(head, { status: "in_progress", output: [], usage: null });
    yield sse(builder.event("response.created", { response: created }));
    yield sse(builder.event("response.in_progress", { response: created }));
    for await (const ev of run.stream) {
      if (ev.type === "started") continue;
      if (ev.type === "failed") {
        const err = httpError(ev.error);
        const code = err.code ?? "server_error";
        run.observer.failed(code);
        run.req.log.warn({ code }, "generation failed mid-stream");
        const partial = builder.finish("incomplete", keptCallIds(run));
        for (const e of partial.events) yield sse(e);
        const failed = responseObject(head, { status: "failed", output: partial.output, usage: null, error: { code, message: err.message } });
        yield sse(builder.event("response.failed", { response: failed }));
        return;
      }
      const { events: out, final } = advance(run, ev);
      for (const e of out) yield sse(e);
      if (final) yield sse(builder.event(final.status === "completed" ? "response.completed" : "response.incomplete", { response: final }));
    }
  }
  await reply.sse.send(events());
}
