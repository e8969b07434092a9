import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ServerDeps } from "../app.js";
import { ChatCompletionRequest } from "../../openai/schema.js";
import { normalizeChatRequest, unknownFields } from "../../openai/normalize.js";
import { ApiError } from "../../openai/errors.js";
import { chunk, completion, usage, usageChunk, type CompletionIds, type WireFinishReason } from "../../openai/chunks.js";
import { ChoiceAssembler, type AssemblerOptions } from "../../openai/assembler.js";
import type { GenerationStream } from "../../router/generation-stream.js";
import type { StartedInfo } from "../../engine/types.js";

interface Choice {
  stream: GenerationStream;
  started: StartedInfo;
  assembler: ChoiceAssembler;
  completionTokens: number;
  cachedTokens: number;
  finishReason?: WireFinishReason;
}

export const chatRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry }) => {
  app.post<{ Body: ChatCompletionRequest }>(
    "/v1/chat/completions",
    { schema: { body: ChatCompletionRequest }, sse: "manual" },
    async (req, reply) => {
      const body = req.body;
      const ignored = unknownFields(body);
      if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
      const worker = registry.resolve(body.model);
      const base = normalizeChatRequest(body, req.id);
      const n = body.n ?? 1;
      const streams = Array.from({ length: n }, (_, i) =>
        worker.generate(i === 0 || base.sampling.seed === undefined ? base : { ...base, sampling: { ...base.sampling, seed: base.sampling.seed + i } }),
      );
      const cancelAll = () => streams.forEach((s) => s.cancel());
      reply.raw.on("close", () => {
        if (!reply.raw.writableFinished) cancelAll();
      });

      // Everything that can be rejected is decided before a header is sent: wait for each choice to be accepted.
      const choices: Choice[] = [];
      for (const stream of streams) {
        const first = await stream.next();
        if (!first || first.type !== "started") {
          cancelAll();
          throw first?.type === "failed" ? ApiError.fromJSON(first.error) : new ApiError(500, "server_error", "Generation ended before it started");
        }
        choices.push({ stream, started: first.info, assembler: new ChoiceAssembler(assemblerOptions(first.info)), completionTokens: 0, cachedTokens: 0 });
      }
      const ids: CompletionIds = { id: `chatcmpl-${req.id.replace(/^req-/, "")}`, created: Math.floor(Date.now() / 1000), model: worker.id };
      return body.stream ? streamChoices(req, reply, ids, choices, body.stream_options?.include_usage === true) : collectChoices(ids, choices);
    },
  );
};

function assemblerOptions(info: StartedInfo): AssemblerOptions {
  return { thinking: info.thinking, startsInReasoning: info.startsInReasoning };
}

function totalUsage(choices: Choice[]) {
  const first = choices[0]!;
  return usage(
    first.started.promptTokens,
    choices.reduce((a, c) => a + c.completionTokens, 0),
    first.cachedTokens,
    choices.reduce((a, c) => a + c.assembler.reasoningTokens, 0),
  );
}

async function collectChoices(ids: CompletionIds, choices: Choice[]) {
  await Promise.all(
    choices.map(async (c) => {
      for await (const ev of c.stream) {
        if (ev.type === "text") c.assembler.push(ev.text, ev.tokens);
        else if (ev.type === "done") {
          c.completionTokens = ev.completionTokens;
          c.cachedTokens = ev.cachedTokens;
          c.assembler.finish();
          c.finishReason = c.assembler.finishReason(ev.finishReason);
        } else if (ev.type === "failed") throw ApiError.fromJSON(ev.error);
      }
    }),
  ).catch((err) => {
    choices.forEach((c) => c.stream.cancel());
    throw err;
  });
  return completion(
    ids,
    choices.map((c) => ({ message: c.assembler.message(), finishReason: c.finishReason ?? "stop" })),
    totalUsage(choices),
  );
}

async function streamChoices(req: FastifyRequest, reply: FastifyReply, ids: CompletionIds, choices: Choice[], includeUsage: boolean) {
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
        req.log.warn({ code: ev.error.code }, "generation failed mid-stream");
        yield { data: ApiError.fromJSON(ev.error).toBody() };
        return;
      }
      if (ev.type === "text") {
        for (const delta of c.assembler.push(ev.text, ev.tokens)) yield { data: chunk(ids, i, delta) };
      } else if (ev.type === "done") {
        c.completionTokens = ev.completionTokens;
        c.cachedTokens = ev.cachedTokens;
        for (const delta of c.assembler.finish()) yield { data: chunk(ids, i, delta) };
        c.finishReason = c.assembler.finishReason(ev.finishReason);
        yield { data: chunk(ids, i, {}, c.finishReason) };
      }
      pending.set(i, c.stream.next().then((next) => ({ i, ev: next })));
    }
    if (includeUsage) yield { data: usageChunk(ids, totalUsage(choices)) };
    yield { data: "[DONE]" };
  }
  await reply.sse.send(events());
}
