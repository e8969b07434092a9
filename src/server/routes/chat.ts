import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ServerDeps } from "../app.js";
import { ChatCompletionRequest } from "../../openai/schema.js";
import { normalizeChatRequest, responseOptions, unknownFields, type ResponseOptions } from "../../openai/normalize.js";
import { ApiError } from "../../openai/errors.js";
import { admitChoices, choiceRequests } from "../admission.js";
import { chunk, completion, usage, usageChunk, type CompletionIds, type WireFinishReason } from "../../openai/chunks.js";
import { ChoiceAssembler } from "../../openai/assembler.js";
import type { GenerationStream } from "../../router/generation-stream.js";
import type { GenerationEvent, StartedInfo } from "../../engine/types.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";

interface RequestContext {
  req: FastifyRequest;
  ids: CompletionIds;
  choices: Choice[];
  observer: RequestMetrics;
}

interface Choice {
  stream: GenerationStream;
  started: StartedInfo;
  assembler: ChoiceAssembler;
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  finishReason?: WireFinishReason;
}

export const chatRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry, config, metrics }) => {
  app.post<{ Body: ChatCompletionRequest }>(
    "/v1/chat/completions",
    { schema: { body: ChatCompletionRequest }, sse: "manual" },
    async (req, reply) => {
      const body = req.body;
      const ignored = unknownFields(body);
      if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
      const worker = registry.resolve(body.model);
      const base = normalizeChatRequest(body, req.id);
      const presentation = responseOptions(body, config.generation);
      const observer = new RequestMetrics(metrics, worker.id);
      const admitted = await admitChoices(worker, choiceRequests(base, body.n ?? 1), reply, () => observer.disconnected());
      const choices: Choice[] = admitted.map(({ stream, started }) => ({
        stream,
        started,
        assembler: new ChoiceAssembler(assemblerOptions(started, presentation)),
        completionTokens: 0,
        reasoningTokens: 0,
        cachedTokens: 0,
      }));
      observer.accepted(choices[0]!.started.promptTokens);
      req.summary = observer.summary;
      const ids: CompletionIds = { id: `chatcmpl-${req.id.replace(/^req-/, "")}`, created: Math.floor(Date.now() / 1000), model: worker.id };
      const ctx: RequestContext = { req, ids, choices, observer };
      return body.stream ? streamChoices(ctx, reply, body.stream_options?.include_usage === true) : collectChoices(ctx);
    },
  );
};

function assemblerOptions(info: StartedInfo, presentation: ResponseOptions) {
  return { ...presentation, thinking: info.thinking, startsInReasoning: info.startsInReasoning };
}

/** Records a finished choice; the reasoning trace goes to the debug log only, never to info. */
function finished({ req, observer }: RequestContext, index: number, c: Choice, ev: Extract<GenerationEvent, { type: "done" }>): void {
  c.completionTokens = ev.completionTokens;
  c.reasoningTokens = ev.reasoningTokens;
  c.cachedTokens = ev.cachedTokens;
  c.finishReason = c.assembler.finishReason(ev.finishReason);
  observer.prefix(c.started.promptTokens, ev.cachedTokens);
  observer.choiceFinished({ ...ev, finishReason: c.finishReason });
  if (c.assembler.reasoningText) req.log.debug({ choice: index, reasoning: c.assembler.reasoningText }, "reasoning trace");
}

/** A generation failed after the headers: counted here, since the error handler never sees it. */
function failedMidStream({ req, observer }: RequestContext, code: string | null): void {
  observer.failed(code ?? "internal_error");
  req.log.warn({ code }, "generation failed mid-stream");
}

function totalUsage(choices: Choice[]) {
  const first = choices[0]!;
  return usage(
    first.started.promptTokens,
    choices.reduce((a, c) => a + c.completionTokens, 0),
    first.cachedTokens,
    choices.reduce((a, c) => a + c.reasoningTokens, 0),
  );
}

async function collectChoices(ctx: RequestContext) {
  const { ids, choices, observer } = ctx;
  await Promise.all(
    choices.map(async (c, i) => {
      for await (const ev of c.stream) {
        if (ev.type === "text") {
          observer.tokens(ev.tokens);
          c.assembler.push(ev.text);
        } else if (ev.type === "done") {
          c.assembler.finish();
          finished(ctx, i, c, ev);
        } else if (ev.type === "failed") throw ApiError.fromJSON(ev.error);
      }
    }),
  ).catch((err) => {
    choices.forEach((c) => c.stream.cancel());
    throw err;
  });
  observer.completed();
  return completion(
    ids,
    choices.map((c) => ({ message: c.assembler.message(), finishReason: c.finishReason ?? "stop" })),
    totalUsage(choices),
  );
}

async function streamChoices(ctx: RequestContext, reply: FastifyReply, includeUsage: boolean) {
  const { ids, choices, observer } = ctx;
  reply.header("x-accel-buffering", "no");
  async function* events() {
    for (let i = 0; i < choices.length; i++) yield { data: chunk(ids, i, { role: "assistant", content: "" }) };
    // Interleave choices as their events arrive.
    const pending = new Map(choices.map((c, i) => [i, c.stream.next().then((ev) => ({ i, ev }))]));
    while (pending.size > 0) {
      const { i, ev } = await Promise.race(pending.values());
      const c = choices[i]!;
      if (!ev) {
        pending.delete(i);
        continue;
      }
      if (ev.type === "failed") {
        choices.forEach((x) => x.stream.cancel());
        failedMidStream(ctx, ev.error.code);
        yield { data: ApiError.fromJSON(ev.error).toBody() };
        return;
      }
      if (ev.type === "text") {
        observer.tokens(ev.tokens);
        for (const delta of c.assembler.push(ev.text)) yield { data: chunk(ids, i, delta) };
      } else if (ev.type === "done") {
        for (const delta of c.assembler.finish()) yield { data: chunk(ids, i, delta) };
        finished(ctx, i, c, ev);
        yield { data: chunk(ids, i, {}, c.finishReason) };
      }
      pending.set(i, c.stream.next().then((next) => ({ i, ev: next })));
    }
    observer.completed();
    if (includeUsage) yield { data: usageChunk(ids, totalUsage(choices)) };
    yield { data: "[DONE]" };
  }
  await reply.sse.send(events());
}
