/**
 * What routes that run several choices share once they are admitted: reading every request to
 * the end (JSON answers), interleaving the choices' events as they arrive (SSE answers), and
 * recording how each choice ended. Each engine request generates `n` choices on one handle, its
 * events carrying the choice's index: request r's choice i is choice r × n + i of the answer.
 */
import type { FastifyRequest } from "fastify";
import type { RequestHandle } from "../router/request-handle.js";
import type { GenerationEvent, StartedInfo } from "../engine/types.js";
import type { RequestMetrics } from "../metrics/request-metrics.js";
import type { CompletionIds, WireFinishReason } from "../openai/chunks.js";
import { httpError } from "./engine-errors.js";

export type DoneEvent = Extract<GenerationEvent, { type: "done" }>;
/** Events a route handles; `started` was consumed at admission and `failed` ends the request. */
export type ChoiceEvent = Extract<GenerationEvent, { type: "text" | "done" }>;

export interface RunningChoice {
  started: StartedInfo;
  completionTokens: number;
  reasoningTokens: number;
  cachedTokens: number;
  finishReason?: WireFinishReason;
}

/** What an OpenAI-style route's JSON and SSE answers need once its choices are admitted. */
export interface ChoicesContext<C extends RunningChoice> {
  req: FastifyRequest;
  ids: CompletionIds;
  choices: C[];
  /** The engine requests, each running `n` consecutive choices. */
  handles: readonly RequestHandle[];
  n: number;
  observer: RequestMetrics;
  /** The request asked for logprobs. */
  logprobs: boolean;
}

/** Ids of a chat or text completion: `prefix` and the request id, as the client sees it. */
export function completionIds(prefix: string, req: FastifyRequest, model: string): CompletionIds {
  return { id: `${prefix}-${req.id.replace(/^req-/, "")}`, created: Math.floor(Date.now() / 1000), model };
}

export function runningChoice(started: StartedInfo): RunningChoice {
  return { started, completionTokens: 0, reasoningTokens: 0, cachedTokens: 0 };
}

/** Records a choice that finished normally, with the finish reason the client sees. */
export function recordFinished(observer: RequestMetrics, c: RunningChoice, ev: DoneEvent, finishReason: WireFinishReason): void {
  c.completionTokens = ev.completionTokens;
  c.reasoningTokens = ev.reasoningTokens;
  c.cachedTokens = ev.cachedTokens;
  c.finishReason = finishReason;
  observer.prefix(c.started.promptTokens, ev.cachedTokens);
  observer.choiceFinished({ ...ev, finishReason });
}

/**
 * Reads every request to its end, handing each choice's text and done events to `onEvent`; the
 * first failure cancels the other requests and is thrown (nothing was sent yet).
 */
export async function collectChoices(
  { handles, n, observer }: ChoicesContext<RunningChoice>,
  onEvent: (index: number, ev: ChoiceEvent) => void,
): Promise<void> {
  await Promise.all(
    handles.map(async (handle, r) => {
      for await (const ev of handle) {
        if (ev.type === "failed") throw httpError(ev.error);
        if (ev.type === "text") observer.tokens(ev.tokens);
        if (ev.type !== "started") onEvent(r * n + ev.index, ev);
      }
    }),
  ).catch((err) => {
    handles.forEach((h) => h.cancel());
    throw err;
  });
  observer.completed();
}

/**
 * The choices' events in arrival order, as SSE data: `toData` turns one into the chunks to send.
 * A failure after the headers cancels the other requests and ends the stream with an error event.
 */
export async function* interleaveChoices(
  { req, handles, n, observer }: ChoicesContext<RunningChoice>,
  toData: (index: number, ev: ChoiceEvent) => unknown[],
): AsyncGenerator<{ data: unknown }, boolean> {
  const pending = new Map(handles.map((h, r) => [r, h.next().then((ev) => ({ r, ev }))]));
  while (pending.size > 0) {
    const { r, ev } = await Promise.race(pending.values());
    if (!ev) {
      pending.delete(r);
      continue;
    }
    if (ev.type === "failed") {
      handles.forEach((h) => h.cancel());
      const err = httpError(ev.error);
      // Counted here: the error handler never sees a failure after the headers.
      observer.failed(err.code ?? "internal_error");
      req.log.warn({ code: err.code }, "generation failed mid-stream");
      yield { data: err.toBody() };
      return false;
    }
    if (ev.type === "text") observer.tokens(ev.tokens);
    if (ev.type !== "started") for (const data of toData(r * n + ev.index, ev)) yield { data };
    pending.set(r, handles[r]!.next().then((next) => ({ r, ev: next })));
  }
  observer.completed();
  return true;
}
