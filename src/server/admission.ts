/**
 * Starting generations for a route. Everything that can be rejected (bad template, context too
 * long, queue full) is decided before a header is sent, so each route waits here until every
 * engine request (one per prompt, each generating its `n` choices) is accepted or the request
 * fails with a plain HTTP error.
 */
import type { FastifyReply } from "fastify";
import type { SSEMessage } from "@fastify/sse";
import type { ServedModel } from "../router/served-model.js";
import { keepAliveOf } from "./keep-alive.js";
import type { RequestHandle } from "../router/request-handle.js";
import type { AdapterUse, GenerationRequest, StartedInfo } from "../engine/types.js";
import type { LoraSelection } from "../router/adapters.js";
import { type ApiError, clientClosed } from "../openai/errors.js";
import { httpError } from "./engine-errors.js";

export interface AdmittedRequest {
  stream: RequestHandle;
  started: StartedInfo;
}

/** What admission reads from the API request besides its generations. */
export interface AdmissionOptions {
  /** The client asked for SSE: while the model loads, the headers go out and heartbeats keep the connection alive. */
  stream: boolean;
  /** The request body, for its `keep_alive`. */
  body: unknown;
  /** The SSE message that reports a failure once the headers are out (default: OpenAI's `data: {"error": …}`). */
  errorEvent?: (err: ApiError) => SSEMessage;
}

/**
 * Submits the engine requests of one API request (several for several completion prompts) and
 * waits until each is accepted, loading the model first if it is not loaded. A client hanging up at any point
 * cancels them all and calls `onDisconnect`. Null when the request failed after its SSE headers
 * went out (the model was loading): the failure was sent as the stream's last event.
 */
export async function admitRequests(
  model: ServedModel,
  requests: GenerationRequest[],
  reply: FastifyReply,
  onDisconnect: () => void,
  options: AdmissionOptions,
): Promise<AdmittedRequest[] | null> {
  const keepAlive = keepAliveOf(options.body);
  // A load can take a while: a streaming client gets its headers now and SSE heartbeats
  // (server.sseHeartbeatMs) until the first event; a failure then ends the stream with an error event.
  if (options.stream && model.loadStatus !== "loaded") reply.sse.sendHeaders();
  const streams = requests.map((r) => model.generate(r, keepAlive));
  const cancelAll = () => streams.forEach((s) => s.cancel());
  reply.raw.on("close", () => {
    if (reply.raw.writableFinished) return;
    cancelAll();
    onDisconnect();
  });
  const admitted: AdmittedRequest[] = [];
  for (const stream of streams) {
    const first = await stream.next();
    if (!first || first.type !== "started") {
      cancelAll();
      // A stream ends without an event only when it was cancelled: the client hung up during
      // admission. Nobody reads this answer; it must not count as a server error.
      const err = first?.type === "failed" ? httpError(first.error) : clientClosed();
      if (!reply.raw.headersSent) throw err;
      reply.log.warn({ code: err.code }, `${err.message} (after the SSE headers)`);
      if (!reply.raw.destroyed) await reply.sse.send(options.errorEvent?.(err) ?? { data: err.toBody() });
      return null;
    }
    admitted.push({ stream, started: first.info });
  }
  return admitted;
}

/**
 * The LoRA adapters a request runs with (its `lora` field, its `<model>:<adapter>` model id),
 * and the model id its response names: the adapter's model id when it asked for one, as vLLM does.
 */
export function requestAdapters(
  worker: ServedModel,
  body: { model?: string; lora?: LoraSelection[] | null },
): { adapters: AdapterUse[]; model: string } {
  const adapters = worker.adapters.select(worker.id, body.model, body.lora ?? undefined);
  return { adapters, model: worker.adapters.byModelId(worker.id, body.model) ? body.model! : worker.id };
}
