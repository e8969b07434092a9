/**
 * Starting generations for a route. Everything that can be rejected (bad template, context too
 * long, queue full) is decided before a header is sent, so each route waits here until every
 * choice is accepted or the request fails with a plain HTTP error.
 */
import type { FastifyReply } from "fastify";
import type { ModelWorker } from "../router/model-worker.js";
import type { GenerationStream } from "../router/generation-stream.js";
import type { AdapterUse, GenerationRequest, StartedInfo } from "../engine/types.js";
import type { LoraSelection } from "../router/adapters.js";
import { clientClosed } from "../openai/errors.js";
import { httpError } from "./engine-errors.js";

export interface AdmittedChoice {
  stream: GenerationStream;
  started: StartedInfo;
}

/**
 * Submits one generation per request (the choices of one API request) and waits until each is
 * accepted. A client hanging up at any point cancels them all and calls `onDisconnect`.
 */
export async function admitChoices(
  worker: ModelWorker,
  requests: GenerationRequest[],
  reply: FastifyReply,
  onDisconnect: () => void,
): Promise<AdmittedChoice[]> {
  const streams = requests.map((r) => worker.generate(r));
  const cancelAll = () => streams.forEach((s) => s.cancel());
  reply.raw.on("close", () => {
    if (reply.raw.writableFinished) return;
    cancelAll();
    onDisconnect();
  });
  const choices: AdmittedChoice[] = [];
  for (const stream of streams) {
    const first = await stream.next();
    if (!first || first.type !== "started") {
      cancelAll();
      // A stream ends without an event only when it was cancelled: the client hung up during
      // admission. Nobody reads this answer; it must not count as a server error.
      throw first?.type === "failed" ? httpError(first.error) : clientClosed();
    }
    choices.push({ stream, started: first.info });
  }
  return choices;
}

/**
 * The LoRA adapters a request runs with (its `lora` field, its `<model>:<adapter>` model id),
 * and the model id its response names: the adapter's model id when it asked for one, as vLLM does.
 */
export function requestAdapters(
  worker: ModelWorker,
  body: { model?: string; lora?: LoraSelection[] | null },
): { adapters: AdapterUse[]; model: string } {
  const adapters = worker.adapters.select(worker.id, body.model, body.lora ?? undefined);
  return { adapters, model: worker.adapters.byModelId(worker.id, body.model) ? body.model! : worker.id };
}

/** The request for choice `index` of `n`: each choice after the first gets its own seed, so the choices differ. */
export function choiceRequests(base: GenerationRequest, n: number): GenerationRequest[] {
  return Array.from({ length: n }, (_, i) =>
    i === 0 || base.sampling.seed === undefined ? base : { ...base, sampling: { ...base.sampling, seed: base.sampling.seed + i } },
  );
}
