import { describe, expect, it } from "vitest";
import { ChoiceAssembler, type AssemblerOptions } from "../../src/openai/assembler.js";
import type { ChatDelta } from "../../src/openai/chunks.js";

const DEFAULTS: AssemblerOptions = {
  thinking: true,
  startsInReasoning: false,
  returnReasoning: true,
  reasoningFormat: "separate",
  reasoningAlias: false,
  toolCalls: false,
};

const THOUGHT_AND_ANSWER = "<think>\nPlan it.\n</think>\n\nDone.";
const CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

/** Feeds `text` in pieces of `size` characters; returns the deltas and the assembler. */
function run(text: string, options: Partial<AssemblerOptions> = {}, size = 3) {
  const assembler = new ChoiceAssembler({ ...DEFAULTS, ...options });
  const deltas: ChatDelta[] = [];
  for (let i = 0; i < text.length; i += size) deltas.push(...assembler.push(text.slice(i, i + size)));
  deltas.push(...assembler.finish());
  return { assembler, deltas };
}

const joined = (deltas: ChatDelta[], field: "content" | "reasoning_content" | "reasoning") => deltas.map((d) => d[field] ?? "").join("");

describe("ChoiceAssembler", () => {
  it("splits reasoning from content, in deltas and in the message", () => {
    const { assembler, deltas } = run(THOUGHT_AND_ANSWER);
    expect(joined(deltas, "reasoning_content")).toBe("Plan it.");
    expect(joined(deltas, "content")).toBe("Done.");
    expect(deltas.every((d) => d.reasoning === undefined)).toBe(true);
    expect(assembler.message()).toEqual({ role: "assistant", content: "Done.", reasoning_content: "Plan it." });
    expect(assembler.finishReason("stop")).toBe("stop");
  });

  it("fills `reasoning` too when the alias is on", () => {
    const { assembler, deltas } = run(THOUGHT_AND_ANSWER, { reasoningAlias: true });
    expect(joined(deltas, "reasoning")).toBe("Plan it.");
    expect(assembler.message()).toMatchObject({ reasoning_content: "Plan it.", reasoning: "Plan it." });
  });

  it("withholds the reasoning when asked, but keeps it for the debug log", () => {
    const { assembler, deltas } = run(THOUGHT_AND_ANSWER, { returnReasoning: false });
    expect(joined(deltas, "reasoning_content")).toBe("");
    expect(assembler.message()).toEqual({ role: "assistant", content: "Done." });
    expect(assembler.reasoningText).toBe("Plan it.");
  });

  it("inline format puts the think block in content, also when the prompt opened it", () => {
    expect(run(THOUGHT_AND_ANSWER, { reasoningFormat: "inline" }).assembler.message()).toEqual({ role: "assistant", content: "<think>\nPlan it.\n</think>\n\nDone." });
    const opened = run("\nPlan it.\n</think>\n\nDone.", { reasoningFormat: "inline", startsInReasoning: true });
    expect(joined(opened.deltas, "content")).toBe("<think>\nPlan it.\n</think>\n\nDone.");
    // Cut off inside the thought: the block stays open, as the model left it.
    expect(run("<think>\nPlan", { reasoningFormat: "inline" }).assembler.message().content).toBe("<think>\nPlan");
  });

  it("with thinking off everything is content, and content is never null", () => {
    expect(run("<think>x</think>y", { thinking: false }).assembler.message()).toEqual({ role: "assistant", content: "<think>x</think>y" });
    expect(run("", { thinking: false }).assembler.message()).toEqual({ role: "assistant", content: "" });
  });

  it("parses a tool call: id, type and name in the first delta, arguments after, content null", () => {
    const { assembler, deltas } = run(`<think>\nCall it.\n</think>\n\n${CALL}`, { toolCalls: { parallel: true } });
    const calls = deltas.flatMap((d) => d.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(calls[0]!.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls.slice(1).every((c) => c.index === 0 && c.id === undefined && c.type === undefined && c.function.name === undefined)).toBe(true);
    expect(calls.map((c) => c.function.arguments).join("")).toBe('{"city": "Paris"}');
    const message = assembler.message();
    expect(message.content).toBeNull();
    expect(message.reasoning_content).toBe("Call it.");
    expect(message.tool_calls).toEqual([{ id: calls[0]!.id, type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } }]);
    expect(assembler.finishReason("stop")).toBe("tool_calls");
    expect(assembler.finishReason("length")).toBe("length");
  });

  it("never looks for tool calls inside the reasoning", () => {
    const { assembler } = run(`<think>\n${CALL}\n</think>\n\nNo call.`, { toolCalls: { parallel: true } });
    expect(assembler.message()).toEqual({ role: "assistant", content: "No call.", reasoning_content: CALL });
    expect(assembler.finishReason("stop")).toBe("stop");
  });

  it("keeps text around calls as content and gives parallel calls their own index and id", () => {
    const second = CALL.replace("Paris", "Rome");
    const { assembler, deltas } = run(`Checking.\n\n${CALL}\n${second}`, { thinking: false, toolCalls: { parallel: true } });
    const message = assembler.message();
    expect(message.content).toBe("Checking.");
    expect(message.tool_calls!.map((c) => JSON.parse(c.function.arguments).city)).toEqual(["Paris", "Rome"]);
    expect(message.tool_calls![0]!.id).not.toBe(message.tool_calls![1]!.id);
    expect(deltas.flatMap((d) => d.tool_calls ?? []).filter((c) => c.id).map((c) => c.index)).toEqual([0, 1]);
  });

  it("keeps only the first call without parallel tool calls", () => {
    const { assembler, deltas } = run(`${CALL}\n${CALL.replace("Paris", "Rome")}`, { thinking: false, toolCalls: { parallel: false } });
    expect(assembler.message().tool_calls!.map((c) => JSON.parse(c.function.arguments).city)).toEqual(["Paris"]);
    expect(deltas.flatMap((d) => d.tool_calls ?? []).every((c) => c.index === 0)).toBe(true);
  });

  it("returns a malformed call as text", () => {
    const broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>';
    const { assembler } = run(`Hm.\n${broken}`, { thinking: false, toolCalls: { parallel: true } });
    const message = assembler.message();
    expect(message.tool_calls).toBeUndefined();
    expect(message.content).toBe(`Hm.${broken}`);
    expect(assembler.finishReason("stop")).toBe("stop");
  });

  it("leaves tool-call markup alone when tool calls are not parsed (no tools, or tool_choice none)", () => {
    const { assembler } = run(CALL, { thinking: false });
    expect(assembler.message()).toEqual({ role: "assistant", content: CALL });
  });
});
