/**
 * Builders for OpenAI Responses objects: output items grown from the chat assembler's deltas,
 * the streaming events that grow them (OpenAI's names, numbered by `sequence_number`), and the
 * response object itself. The same builder serves JSON and SSE, so both give the same output.
 */
import { randomBytes } from "node:crypto";
import type { ChatDelta } from "./chunks.js";
import type { ResponsesRequest } from "./responses-schema.js";

const itemId = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;
export const responseId = () => itemId("resp");

type ItemStatus = "in_progress" | "completed" | "incomplete";

export interface ReasoningItem {
  id: string;
  type: "reasoning";
  summary: [];
  content: Array<{ type: "reasoning_text"; text: string }>;
}

export interface MessageItem {
  id: string;
  type: "message";
  role: "assistant";
  status: ItemStatus;
  content: Array<{ type: "output_text"; text: string; annotations: [] }>;
}

export interface FunctionCallItem {
  id: string;
  type: "function_call";
  status: ItemStatus;
  call_id: string;
  name: string;
  arguments: string;
}

export type OutputItem = ReasoningItem | MessageItem | FunctionCallItem;

export interface ResponsesUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function responsesUsage(input: number, output: number, cached: number, reasoning: number): ResponsesUsage {
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: input + output,
  };
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

/** A streaming event: `type` is also the SSE `event:` name. */
export interface ResponsesEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

/** What the response object echoes of its request. */
export function requestEcho(body: ResponsesRequest) {
  return {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: (body.tools ?? []).map((t) => ({ ...t, description: t.description ?? null, parameters: t.parameters ?? null, strict: t.strict ?? null })),
    top_p: body.top_p ?? null,
    truncation: "disabled",
    user: body.user ?? null,
  };
}

export interface ResponseHead {
  id: string;
  created_at: number;
  model: string;
  echo: ReturnType<typeof requestEcho>;
}

export interface ResponseState {
  status: ResponseStatus;
  output: OutputItem[];
  usage: ResponsesUsage | null;
  error?: { code: string; message: string } | null;
}

export function responseObject(head: ResponseHead, state: ResponseState) {
  const done = state.status !== "in_progress";
  return {
    id: head.id,
    object: "response" as const,
    created_at: head.created_at,
    status: state.status,
    background: false,
    completed_at: state.status === "completed" ? Math.floor(Date.now() / 1000) : null,
    error: state.error ?? null,
    incomplete_details: state.status === "incomplete" ? { reason: "max_output_tokens" as const } : null,
    model: head.model,
    output: state.output,
    ...head.echo,
    usage: done ? state.usage : null,
  };
}
export type ResponseObject = ReturnType<typeof responseObject>;

/** The item being written, with its position in `output`. */
type Open = { item: OutputItem; index: number; text: string };

/**
 * Grows the output items from chat deltas and returns the events that announce each change.
 * An item is open until something of another kind begins or the generation ends.
 */
export class ResponseOutputBuilder {
  private readonly items: OutputItem[] = [];
  private readonly calls = new Map<number, Open>();
  private open: Open | undefined;
  private sequence = 0;

  /** Numbers an event; lifecycle events (response.created, ...) go through here too. */
  event(type: string, fields: Record<string, unknown>): ResponsesEvent {
    return { type, sequence_number: this.sequence++, ...fields };
  }

  apply(deltas: ChatDelta[]): ResponsesEvent[] {
    const events: ResponsesEvent[] = [];
    for (const delta of deltas) {
      if (delta.reasoning_content) this.appendText("reasoning", delta.reasoning_content, events);
      if (delta.content) this.appendText("message", delta.content, events);
      for (const call of delta.tool_calls ?? []) this.onToolCall(call, events);
    }
    return events;
  }

  /**
   * Closes the last item. `validCallIds`: the calls the assembler kept; a `<tool_call>` block that
   * turned out unusable after it was announced stays out of the final output, as in chat.
   */
  finish(status: "completed" | "incomplete", validCallIds: Set<string>): { events: ResponsesEvent[]; output: OutputItem[] } {
    const events: ResponsesEvent[] = [];
    this.close(events, status);
    const output = this.items.filter((item) => item.type !== "function_call" || validCallIds.has(item.call_id));
    return { events, output };
  }

  private appendText(kind: "reasoning" | "message", text: string, events: ResponsesEvent[]): void {
    if (this.open?.item.type !== kind) {
      this.close(events, "completed");
      this.begin(
        kind === "reasoning"
          ? { id: itemId("rs"), type: "reasoning", summary: [], content: [] }
          : { id: itemId("msg"), type: "message", role: "assistant", status: "in_progress", content: [] },
        events,
      );
      events.push(this.partEvent("response.content_part.added", this.open!, ""));
    }
    const open = this.open!;
    open.text += text;
    const type = kind === "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta";
    events.push(this.event(type, { ...this.where(open), content_index: 0, delta: text, ...(kind === "message" && { logprobs: [] }) }));
  }

  private onToolCall(delta: NonNullable<ChatDelta["tool_calls"]>[number], events: ResponsesEvent[]): void {
    if (delta.id) {
      this.close(events, "completed");
      const item: FunctionCallItem = { id: itemId("fc"), type: "function_call", status: "in_progress", call_id: delta.id, name: delta.function.name ?? "", arguments: "" };
      this.begin(item, events);
      this.calls.set(delta.index, this.open!);
    }
    const open = this.calls.get(delta.index);
    if (!open || !delta.function.arguments) return;
    open.text += delta.function.arguments;
    events.push(this.event("response.function_call_arguments.delta", { ...this.where(open), delta: delta.function.arguments }));
  }

  private begin(item: OutputItem, events: ResponsesEvent[]): void {
    this.open = { item, index: this.items.length, text: "" };
    this.items.push(item);
    events.push(this.event("response.output_item.added", { output_index: this.open.index, item: structuredClone(item) }));
  }

  /** Writes the open item's text into it and announces it done. */
  private close(events: ResponsesEvent[], status: "completed" | "incomplete"): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const { item, text } = open;
    if (item.type === "function_call") {
      item.arguments = text;
      item.status = status;
      events.push(this.event("response.function_call_arguments.done", { ...this.where(open), name: item.name, arguments: text }));
    } else {
      const done = item.type === "reasoning" ? "response.reasoning_text.done" : "response.output_text.done";
      events.push(this.event(done, { ...this.where(open), content_index: 0, text, ...(item.type === "message" && { logprobs: [] }) }));
      if (item.type === "reasoning") item.content = [{ type: "reasoning_text", text }];
      else {
        item.content = [{ type: "output_text", text, annotations: [] }];
        item.status = status;
      }
      events.push(this.partEvent("response.content_part.done", open, text));
    }
    events.push(this.event("response.output_item.done", { output_index: open.index, item: structuredClone(item) }));
  }

  private partEvent(type: string, open: Open, text: string): ResponsesEvent {
    const part = open.item.type === "reasoning" ? { type: "reasoning_text", text } : { type: "output_text", text, annotations: [] };
    return this.event(type, { ...this.where(open), content_index: 0, part });
  }

  private where(open: Open) {
    return { item_id: open.item.id, output_index: open.index };
  }
}
