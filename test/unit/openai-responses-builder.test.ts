/** ResponseOutputBuilder: output items and their events from chat deltas. */
import { describe, it, expect } from "vitest";
import { ResponseOutputBuilder } from "../../src/openai/responses.js";

describe("ResponseOutputBuilder", () => {
  it("opens an item per kind, closes it when another kind begins, and numbers every event", () => {
    const b = new ResponseOutputBuilder();
    const first = b.event("response.created", {});
    const events = [
      first,
      ...b.apply([{ reasoning_content: "Think" }, { reasoning_content: "ing." }, { content: "Calling." }]),
      ...b.apply([{ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "f", arguments: "" } }] }]),
      ...b.apply([{ tool_calls: [{ index: 0, function: { arguments: '{"x":' } }] }, { tool_calls: [{ index: 0, function: { arguments: "1}" } }] }]),
    ];
    const { events: last, output } = b.finish("completed", new Set(["call_a"]));
    const all = [...events, ...last];
    expect(all.map((e) => e.sequence_number)).toEqual(all.map((_, i) => i));
    expect(output.map((o) => o.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(output[0]).toMatchObject({ content: [{ type: "reasoning_text", text: "Thinking." }] });
    expect(output[1]).toMatchObject({ status: "completed", content: [{ type: "output_text", text: "Calling.", annotations: [] }] });
    expect(output[2]).toMatchObject({ call_id: "call_a", name: "f", arguments: '{"x":1}', status: "completed" });
    const done = all.filter((e) => e.type === "response.output_item.done").map((e) => e["item"]);
    expect(done).toEqual(output);
    expect(all.find((e) => e.type === "response.function_call_arguments.done")).toMatchObject({ output_index: 2, arguments: '{"x":1}', name: "f" });
  });

  it("leaves a call the assembler dropped out of the final output, after announcing it done", () => {
    const b = new ResponseOutputBuilder();
    const events = [
      ...b.apply([{ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "f", arguments: "" } }] }]),
      ...b.apply([{ content: "<tool_call>\n{broken" }]),
    ];
    const { events: last, output } = b.finish("incomplete", new Set());
    expect([...events, ...last].filter((e) => e.type === "response.output_item.done").map((e) => (e["item"] as { type: string }).type)).toEqual(["function_call", "message"]);
    expect(output).toHaveLength(1);
    expect(output[0]).toMatchObject({ type: "message", status: "incomplete", content: [{ text: "<tool_call>\n{broken" }] });
  });
});
