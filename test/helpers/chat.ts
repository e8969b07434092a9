/** Reading chat completion streams back into what a client ends up with. */
import type OpenAI from "openai";

type Chunk = OpenAI.Chat.Completions.ChatCompletionChunk;
/** Non-standard delta fields this server sends. */
type Delta = Chunk["choices"][number]["delta"] & { reasoning_content?: string; reasoning?: string };

export interface Collected {
  chunks: Chunk[];
  reasoning: string;
  /** The `reasoning` alias field, joined. */
  reasoningAlias: string;
  content: string;
  /** Tool call deltas exactly as sent, in order. */
  toolCallDeltas: NonNullable<Delta["tool_calls"]>;
  /** Calls assembled by index, as a client merges them. */
  toolCalls: Array<{ id: string; name: string; arguments: string }>;
  finishReason: string | null;
  usage: Chunk["usage"];
}

export async function collect(stream: AsyncIterable<Chunk>): Promise<Collected> {
  const out: Collected = { chunks: [], reasoning: "", reasoningAlias: "", content: "", toolCallDeltas: [], toolCalls: [], finishReason: null, usage: undefined };
  for await (const chunk of stream) {
    out.chunks.push(chunk);
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    const delta = choice.delta as Delta;
    out.reasoning += delta.reasoning_content ?? "";
    out.reasoningAlias += delta.reasoning ?? "";
    out.content += delta.content ?? "";
    for (const call of delta.tool_calls ?? []) {
      out.toolCallDeltas.push(call);
      const merged = (out.toolCalls[call.index] ??= { id: "", name: "", arguments: "" });
      merged.id += call.id ?? "";
      merged.name += call.function?.name ?? "";
      merged.arguments += call.function?.arguments ?? "";
    }
    if (choice.finish_reason) out.finishReason = choice.finish_reason;
  }
  return out;
}

export interface TimedStream {
  text: string;
  finish: string | null;
  /** Date.now() when the request was sent and when its stream ended. */
  started: number;
  ended: number;
}

/** One streamed chat ("hi", thinking off) to `model`: its content, finish reason and timing. */
export async function timedStream(client: OpenAI, model: string): Promise<TimedStream> {
  const started = Date.now();
  const chunks = await client.chat.completions.create({
    model,
    stream: true,
    messages: [{ role: "user", content: "hi" }],
    chat_template_kwargs: { enable_thinking: false },
  } as OpenAI.ChatCompletionCreateParamsStreaming);
  const { content, finishReason } = await collect(chunks);
  return { text: content, finish: finishReason, started, ended: Date.now() };
}

/** `concurrency` timed streams at a time, a new one as each ends, until `until()` says stop; every result. */
export async function streamLoad(client: OpenAI, model: string, concurrency: number, until: () => boolean): Promise<TimedStream[]> {
  const results: TimedStream[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!until()) results.push(await timedStream(client, model));
    }),
  );
  return results;
}
