import { describe, expect, it } from "vitest";
import { MessageEvents } from "../../src/anthropic/events.js";
import { contentBlocks, messageUsage, stopReason } from "../../src/anthropic/message.js";

const ids = { id: "msg_1", model: "m" };

describe("Anthropic stream events from chat deltas", () => {
  it("opens a block per kind, in order, and closes each before the next", () => {
    const events = new MessageEvents(ids);
    const out = [
      ...events.deltas([{ reasoning_content: "think" }, { reasoning_content: "ing" }]),
      ...events.deltas([{ content: "Hi" }]),
      ...events.deltas([{ tool_calls: [{ index: 0, id: "call_abc", type: "function", function: { name: "f", arguments: "" } }] }]),
      ...events.deltas([{ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, { tool_calls: [{ index: 0, function: { arguments: "1}" } }] }]),
      ...events.finish("tool_use", null, messageUsage(10, 4, 7)),
    ];
    expect(out.map((e) => e.data)).toEqual([
      { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "think" } },
      { type: "content_block_delta", index: 0, delta: { type: "thinking_delta", thinking: "ing" } },
      { type: "content_block_stop", index: 0 },
      { type: "content_block_start", index: 1, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 1, delta: { type: "text_delta", text: "Hi" } },
      { type: "content_block_stop", index: 1 },
      { type: "content_block_start", index: 2, content_block: { type: "tool_use", id: "toolu_abc", name: "f", input: {} } },
      { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: '{"a":' } },
      { type: "content_block_delta", index: 2, delta: { type: "input_json_delta", partial_json: "1}" } },
      { type: "content_block_stop", index: 2 },
      {
        type: "message_delta",
        delta: { stop_reason: "tool_use", stop_sequence: null },
        usage: { input_tokens: 6, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 4 },
      },
      { type: "message_stop" },
    ]);
    expect(out.every((e) => e.event === e.data.type)).toBe(true);
  });

  it("starts with message_start and a ping; nothing to close without blocks", () => {
    const events = new MessageEvents(ids);
    const start = events.start(12);
    expect(start.map((e) => e.event)).toEqual(["message_start", "ping"]);
    expect(start[0]!.data).toMatchObject({ message: { id: "msg_1", type: "message", role: "assistant", model: "m", content: [], stop_reason: null, usage: { input_tokens: 12, output_tokens: 0 } } });
    expect(events.finish("max_tokens", null, messageUsage(12, 0, 1)).map((e) => e.event)).toEqual(["message_delta", "message_stop"]);
  });

  it("a second tool call is a new block", () => {
    const events = new MessageEvents(ids);
    const call = (index: number) => ({ tool_calls: [{ index, id: `call_${index}`, type: "function" as const, function: { name: "f", arguments: "" } }] });
    const starts = events.deltas([call(0), call(1)]).filter((e) => e.event === "content_block_start");
    expect(starts.map((e) => e.data)).toMatchObject([{ index: 0, content_block: { id: "toolu_0" } }, { index: 1, content_block: { id: "toolu_1" } }]);
  });
});

describe("Anthropic message parts", () => {
  it("stop reasons: tool calls first, then length, then a stop string", () => {
    expect(stopReason("tool_calls", "x")).toBe("tool_use");
    expect(stopReason("length", undefined)).toBe("max_tokens");
    expect(stopReason("stop", "x")).toBe("stop_sequence");
    expect(stopReason("stop", undefined)).toBe("end_turn");
  });

  it("content blocks: thinking, text, then tool uses with parsed input; empty parts left out", () => {
    expect(
      contentBlocks({
        role: "assistant",
        content: "",
        reasoning_content: "hmm",
        tool_calls: [{ id: "call_9", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
      }),
    ).toEqual([
      { type: "thinking", thinking: "hmm", signature: "" },
      { type: "tool_use", id: "toolu_9", name: "f", input: { a: 1 } },
    ]);
    expect(contentBlocks({ role: "assistant", content: null })).toEqual([]);
  });
});
