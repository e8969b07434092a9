import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { ServerDeps } from "../deps.js";
import { ChatCompletionRequest } from "../../openai/schema.js";
import { normalizeChatRequest, responseOptions, unknownFields, type ResponseOptions } from "../../openai/normalize.js";
import { admitRequests, requestAdapters } from "../admission.js";
import { chatLogprobs, chunk, completion, usage, usageChunk, type ChatDelta } from "../../openai/chunks.js";
import { ChoiceAssembler } from "../../openai/assembler.js";
import type { StartedInfo, TokenLogprob } from "../../engine/types.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";
import { collectChoices, completionIds, interleaveChoices, recordFinished, runningChoice, type ChoicesContext, type DoneEvent, type RunningChoice } from "../choices.js";

type RequestContext = ChoicesContext<Choice>;

interface Choice extends RunningChoice {
  assembler: ChoiceAssembler;
  /** Answer tokens' logprobs not sent yet (streaming) or all of them (JSON). */
  logprobs: TokenLogprob[];
}

export const chatRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry, config, metrics }) => {
  app.post<{ Body: ChatCompletionRequest }>(
    "/v1/chat/completions",
    { schema: { body: ChatCompletionRequest }, sse: "manual", config: { modelWork: true } },
    async (req, reply) => {
      const body = req.body;
      const ignored = unknownFields(body);
      if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
      const worker = registry.resolve(body.model);
      const { adapters, model } = requestAdapters(worker, body);
      const n = body.n ?? 1;
      const request = { ...normalizeChatRequest(body, req.id), adapters, n };
      const presentation = responseOptions(body, config.generation);
      const observer = new RequestMetrics(metrics, worker.id);
      const admitted = await admitRequests(worker, [request], reply, () => observer.disconnected(), { stream: body.stream === true, body });
      if (!admitted) return;
      const { stream, started } = admitted[0]!;
      const choices: Choice[] = Array.from({ length: n }, () => ({
        ...runningChoice(started),
        assembler: new ChoiceAssembler(assemblerOptions(started, presentation)),
        logprobs: [],
      }));
      observer.accepted(started.promptTokens);
      req.summary = observer.summary;
      const ctx: RequestContext = {
        req,
        ids: completionIds("chatcmpl", req, model),
        choices,
        handles: [stream],
        n,
        observer,
        logprobs: request.logprobs !== undefined,
      };
      return body.stream ? streamChat(ctx, reply, body.stream_options?.include_usage === true) : collectChat(ctx);
    },
  );
};

function assemblerOptions(info: StartedInfo, presentation: ResponseOptions) {
  return { ...presentation, thinking: info.thinking, startsInReasoning: info.startsInReasoning };
}

/** Records a finished choice; the reasoning trace goes to the debug log only, never to info. */
function finished({ req, observer }: RequestContext, index: number, c: Choice, ev: DoneEvent): void {
  recordFinished(observer, c, ev, c.assembler.finishReason(ev.finishReason));
  if (c.assembler.reasoningText) req.log.debug({ choice: index, reasoning: c.assembler.reasoningText }, "reasoning trace");
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

async function collectChat(ctx: RequestContext) {
  const { ids, choices } = ctx;
  await collectChoices(ctx, (i, ev) => {
    const c = choices[i]!;
    if (ev.type === "text") {
      c.assembler.push(ev.text);
      if (ev.logprobs) c.logprobs.push(...ev.logprobs);
    } else {
      c.assembler.finish();
      finished(ctx, i, c, ev);
    }
  });
  return completion(
    ids,
    choices.map((c) => ({
      message: c.assembler.message(),
      finishReason: c.finishReason ?? "stop",
      logprobs: ctx.logprobs ? chatLogprobs(c.logprobs) : null,
    })),
    totalUsage(choices),
  );
}

/**
 * Chunks for a choice's deltas. Logprobs ride on the last chunk of the text that carried their
 * tokens; text the assembler still holds back (a possible marker) keeps them for the next chunk.
 */
function deltaChunks(ctx: RequestContext, i: number, deltas: ChatDelta[]) {
  const c = ctx.choices[i]!;
  return deltas.map((delta, k) => {
    const last = k === deltas.length - 1 && ctx.logprobs;
    return chunk(ctx.ids, i, delta, null, last ? chatLogprobs(c.logprobs.splice(0)) : null);
  });
}

async function streamChat(ctx: RequestContext, reply: FastifyReply, includeUsage: boolean) {
  const { ids, choices } = ctx;
  reply.header("x-accel-buffering", "no");
  async function* events() {
    for (let i = 0; i < choices.length; i++) yield { data: chunk(ids, i, { role: "assistant", content: "" }) };
    const completed = yield* interleaveChoices(ctx, (i, ev) => {
      const c = choices[i]!;
      if (ev.type === "text") {
        if (ev.logprobs) c.logprobs.push(...ev.logprobs);
        return deltaChunks(ctx, i, c.assembler.push(ev.text));
      }
      const tail = deltaChunks(ctx, i, c.assembler.finish());
      finished(ctx, i, c, ev);
      const rest = ctx.logprobs && c.logprobs.length > 0 ? chatLogprobs(c.logprobs.splice(0)) : null;
      return [...tail, chunk(ids, i, {}, c.finishReason, rest)];
    });
    if (!completed) return;
    if (includeUsage) yield { data: usageChunk(ids, totalUsage(choices)) };
    yield { data: "[DONE]" };
  }
  await reply.sse.send(events());
}
