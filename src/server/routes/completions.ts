/**
 * POST /v1/completions: raw prompts (text or token ids, one or several) on the same engine and
 * scheduler as chat, without a chat template and without reasoning parsing. Choice index =
 * prompt index × n + i, as OpenAI and vLLM number them.
 */
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { ServerDeps } from "../deps.js";
import type { ServedModel } from "../../router/served-model.js";
import { CompletionRequest } from "../../openai/schema.js";
import { completionPrompts, KNOWN_COMPLETION_FIELDS, normalizeCompletionRequest, unknownFields } from "../../openai/normalize.js";
import { invalidRequest } from "../../openai/errors.js";
import { usage } from "../../openai/chunks.js";
import { legacyLogprobs, textCompletion, textCompletionChunk, textCompletionUsageChunk, type CompletionChoice } from "../../openai/completions.js";
import type { TokenLogprob } from "../../engine/types.js";
import { admitRequests, requestAdapters, type AdmittedRequest } from "../admission.js";
import { RequestMetrics } from "../../metrics/request-metrics.js";
import { collectChoices, completionIds, interleaveChoices, recordFinished, runningChoice, type ChoicesContext, type RunningChoice } from "../choices.js";

interface Choice extends RunningChoice {
  /** The first choice of its prompt: its prompt tokens count in usage. */
  firstOfPrompt: boolean;
  /** Echoed prompt then generated text (JSON), or only what is not sent yet (streaming). */
  text: string;
  logprobs: TokenLogprob[];
  /** Where the next reported token starts in the choice's text. */
  tokenOffset: number;
}

type RequestContext = ChoicesContext<Choice>;

export const completionRoutes: FastifyPluginAsync<ServerDeps> = async (app, { registry, config, metrics }) => {
  app.post<{ Body: CompletionRequest }>("/v1/completions", { schema: { body: CompletionRequest }, sse: "manual", config: { modelWork: true } }, async (req, reply) => {
    const body = req.body;
    const ignored = unknownFields(body, KNOWN_COMPLETION_FIELDS);
    if (ignored.length) req.log.debug({ ignored }, "ignoring unknown request fields");
    const worker = registry.resolve(body.model);
    const { adapters, model } = requestAdapters(worker, body);
    const base = { ...normalizeCompletionRequest(body, req.id), adapters };
    const prompts = completionPrompts(body.prompt);
    const n = body.n ?? 1;
    if (prompts.length * n > config.limits.maxN) {
      throw invalidRequest(
        `${prompts.length} prompts × n = ${n} make ${prompts.length * n} choices; this server generates at most ${config.limits.maxN} per request (limits.maxN)`,
        "prompt",
        "limit_exceeded",
      );
    }
    const observer = new RequestMetrics(metrics, worker.id);
    // One engine request per prompt, each generating the prompt's n choices.
    const requests = prompts.map((prompt) => ({ ...base, prompt, n }));
    const admitted = await admitRequests(worker, requests, reply, () => observer.disconnected(), { stream: body.stream === true, body });
    if (!admitted) return;
    const echoes = body.echo ? await echoTexts(worker, prompts, admitted) : undefined;
    const choices: Choice[] = admitted.flatMap(({ started }, p) => {
      const echo = echoes?.[p] ?? "";
      return Array.from({ length: n }, (_, i) => ({ ...runningChoice(started), firstOfPrompt: i === 0, text: echo, logprobs: [], tokenOffset: echo.length }));
    });
    // One prompt-length observation per prompt, not per choice.
    for (const c of choices) if (c.firstOfPrompt) observer.accepted(c.started.promptTokens);
    req.summary = observer.summary;
    const ctx: RequestContext = {
      req,
      ids: completionIds("cmpl", req, model),
      choices,
      handles: admitted.map((a) => a.stream),
      n,
      observer,
      logprobs: base.logprobs !== undefined,
    };
    return body.stream ? streamCompletions(ctx, reply, body.stream_options?.include_usage === true) : collectCompletions(ctx);
  });
};

/**
 * The prompts as text, for echo: token-id prompts are detokenized by the model. Should that fail
 * (the worker died), the admitted generations are cancelled: nothing will read them.
 */
async function echoTexts(worker: ServedModel, prompts: Array<string | number[]>, admitted: readonly AdmittedRequest[]): Promise<string[]> {
  try {
    return await Promise.all(prompts.map(async (p) => (typeof p === "string" ? p : (await worker.textOp({ kind: "detokenize", tokens: p })).content)));
  } catch (err) {
    admitted.forEach((c) => c.stream.cancel());
    throw err;
  }
}

/** Every prompt counts once, however many choices it has. */
function totalUsage(choices: Choice[]) {
  const firsts = choices.filter((c) => c.firstOfPrompt);
  return usage(
    firsts.reduce((sum, c) => sum + c.started.promptTokens, 0),
    choices.reduce((sum, c) => sum + c.completionTokens, 0),
    firsts.reduce((sum, c) => sum + c.cachedTokens, 0),
    0,
  );
}

/** The legacy logprobs of `entries`, which continue the choice's reported tokens. */
function takeLogprobs(ctx: RequestContext, c: Choice, entries: readonly TokenLogprob[]) {
  if (!ctx.logprobs) return null;
  const out = legacyLogprobs(entries, c.tokenOffset);
  c.tokenOffset += entries.reduce((sum, e) => sum + e.token.length, 0);
  return out;
}

async function collectCompletions(ctx: RequestContext) {
  const { ids, choices, observer } = ctx;
  await collectChoices(ctx, (i, ev) => {
    const c = choices[i]!;
    if (ev.type === "text") {
      c.text += ev.text;
      if (ev.logprobs) c.logprobs.push(...ev.logprobs);
    } else recordFinished(observer, c, ev, ev.finishReason);
  });
  const out: CompletionChoice[] = choices.map((c, index) => ({
    index,
    text: c.text,
    logprobs: takeLogprobs(ctx, c, c.logprobs),
    finish_reason: c.finishReason ?? "stop",
  }));
  return textCompletion(ids, out, totalUsage(choices));
}

async function streamCompletions(ctx: RequestContext, reply: FastifyReply, includeUsage: boolean) {
  const { ids, choices, observer } = ctx;
  reply.header("x-accel-buffering", "no");
  async function* events() {
    // The echoed prompt goes first, as vLLM sends it.
    for (const [index, c] of choices.entries()) {
      if (c.text) yield { data: textCompletionChunk(ids, { index, text: c.text, logprobs: null, finish_reason: null }) };
    }
    const completed = yield* interleaveChoices(ctx, (index, ev) => {
      const c = choices[index]!;
      if (ev.type === "done") {
        recordFinished(observer, c, ev, ev.finishReason);
        return [textCompletionChunk(ids, { index, text: "", logprobs: null, finish_reason: c.finishReason! })];
      }
      if (!ev.text && !ev.logprobs?.length) return [];
      return [textCompletionChunk(ids, { index, text: ev.text, logprobs: takeLogprobs(ctx, c, ev.logprobs ?? []), finish_reason: null })];
    });
    if (!completed) return;
    if (includeUsage) yield { data: textCompletionUsageChunk(ids, totalUsage(choices)) };
    yield { data: "[DONE]" };
  }
  await reply.sse.send(events());
}
