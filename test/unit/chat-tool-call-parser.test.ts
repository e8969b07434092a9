import { describe, expect, it } from "vitest";
import { ToolCallParser, type ToolCallEvent } from "../../src/chat/tool-call-parser.js";

const call = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;

/** The whole output's events, with push and flush results merged as one push would give them. */
function events(text: string): ToolCallEvent[] {
  const parser = new ToolCallParser();
  const merged: ToolCallEvent[] = [];
  for (const event of [...parser.push(text), ...parser.flush()]) {
    const last = merged.at(-1);
    if (last?.type === "content" && event.type === "content") merged[merged.length - 1] = { type: "content", text: last.text + event.text };
    else merged.push(event);
  }
  return merged;
}

/** The whole output folded the way a non-streaming answer reads it: content, finished calls, unusable blocks. */
function parseToolCalls(text: string) {
  let content = "";
  const started = new Map<number, { name: string; arguments: string }>();
  const toolCalls: { name: string; arguments: string }[] = [];
  const invalid: string[] = [];
  for (const event of events(text)) {
    if (event.type === "content") content += event.text;
    else if (event.type === "tool_call_start") started.set(event.index, { name: event.name, arguments: "" });
    else if (event.type === "tool_call_arguments") started.get(event.index)!.arguments += event.fragment;
    else if (event.type === "tool_call_end") toolCalls.push(started.get(event.index)!);
    else invalid.push(event.raw);
  }
  return { content, toolCalls, invalid };
}

describe("ToolCallParser", () => {
  it("splits content from a call and streams the arguments text as written", () => {
    expect(events(`Let me check.\n${call("get_weather", '{"city": "Paris", "unit": "°C"}')}`)).toEqual([
      { type: "content", text: "Let me check." },
      { type: "tool_call_start", index: 0, name: "get_weather" },
      { type: "tool_call_arguments", index: 0, fragment: '{"city": "Paris", "unit": "°C"}' },
      { type: "tool_call_end", index: 0 },
    ]);
  });

  it("numbers several calls and drops the whitespace around them", () => {
    expect(events(`${call("a", "{}")}\n${call("b", '{"x": [1, {"y": "}"}]}')}\n\nDone.\n`)).toEqual([
      { type: "tool_call_start", index: 0, name: "a" },
      { type: "tool_call_arguments", index: 0, fragment: "{}" },
      { type: "tool_call_end", index: 0 },
      { type: "tool_call_start", index: 1, name: "b" },
      { type: "tool_call_arguments", index: 1, fragment: '{"x": [1, {"y": "}"}]}' },
      { type: "tool_call_end", index: 1 },
      { type: "content", text: "Done.\n" },
    ]);
  });

  it("announces a call as soon as its name is complete, then streams the arguments", () => {
    const parser = new ToolCallParser();
    expect(parser.push("Sure <tool_ca")).toEqual([{ type: "content", text: "Sure" }]);
    expect(parser.push('ll>\n{"name": "get_wea')).toEqual([]);
    expect(parser.push('ther", "argu')).toEqual([{ type: "tool_call_start", index: 0, name: "get_weather" }]);
    expect(parser.push('ments": {"ci')).toEqual([{ type: "tool_call_arguments", index: 0, fragment: '{"ci' }]);
    expect(parser.push('ty": "Paris"}}\n</tool')).toEqual([{ type: "tool_call_arguments", index: 0, fragment: 'ty": "Paris"}' }]);
    expect(parser.push("_call>")).toEqual([{ type: "tool_call_end", index: 0 }]);
    expect(parser.flush()).toEqual([]);
  });

  it("accepts arguments given as a JSON string, under `parameters`, before the name, or not at all", () => {
    expect(parseToolCalls('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>').toolCalls).toEqual([{ name: "f", arguments: '{"a": 1}' }]);
    expect(parseToolCalls('<tool_call>{"name": "f", "parameters": {"a": 1}}</tool_call>').toolCalls).toEqual([{ name: "f", arguments: '{"a": 1}' }]);
    expect(parseToolCalls('<tool_call>{"arguments": {"a": 1}, "name": "f"}</tool_call>').toolCalls).toEqual([{ name: "f", arguments: '{"a": 1}' }]);
    expect(parseToolCalls('<tool_call>{"name": "f"}</tool_call>').toolCalls).toEqual([{ name: "f", arguments: "{}" }]);
    expect(parseToolCalls('<tool_call>{"name": "f", "arguments": null}</tool_call>').toolCalls).toEqual([{ name: "f", arguments: "{}" }]);
  });

  it("holds back arguments that precede the name until the call can be announced", () => {
    const parser = new ToolCallParser();
    expect(parser.push('<tool_call>{"arguments": {"a": 1}, ')).toEqual([]);
    expect(parser.push('"name": "f"}')).toEqual([
      { type: "tool_call_start", index: 0, name: "f" },
      { type: "tool_call_arguments", index: 0, fragment: '{"a": 1}' },
    ]);
  });

  it("reports malformed calls as invalid with their raw text, without reusing an announced index", () => {
    const broken = '<tool_call>\n{"name": "f", "arguments": {"a": }\n</tool_call>';
    expect(events(`${broken}\n${call("g", "{}")}`)).toEqual([
      { type: "tool_call_start", index: 0, name: "f" },
      { type: "tool_call_arguments", index: 0, fragment: '{"a": }' },
      { type: "invalid", raw: broken, index: 0 },
      { type: "tool_call_start", index: 1, name: "g" },
      { type: "tool_call_arguments", index: 1, fragment: "{}" },
      { type: "tool_call_end", index: 1 },
    ]);
    const nameless = '<tool_call>{"arguments": {}}</tool_call>';
    expect(events(`${nameless}${call("g", "{}")}`).slice(0, 2)).toEqual([
      { type: "invalid", raw: nameless },
      { type: "tool_call_start", index: 0, name: "g" },
    ]);
  });

  it.each([
    ["not JSON", "<tool_call>get_weather(city=Paris)</tool_call>"],
    ["a non-string name", '<tool_call>{"name": 42, "arguments": {}}</tool_call>'],
    ["an empty name", '<tool_call>{"name": "", "arguments": {}}</tool_call>'],
    ["array arguments", '<tool_call>{"name": "f", "arguments": [1]}</tool_call>'],
    ["text after the object", '<tool_call>{"name": "f", "arguments": {}}}</tool_call>'],
    ["duplicate arguments", '<tool_call>{"name": "f", "arguments": {}, "parameters": {"a": 1}}</tool_call>'],
    ["duplicate names", '<tool_call>{"name": "f", "name": "g", "arguments": {}}</tool_call>'],
    ["an empty body", "<tool_call>\n</tool_call>"],
    ["an unfinished object at the end", '<tool_call>\n{"name": "f", "argu'],
  ])("treats a call with %s as invalid", (_, text) => {
    expect(parseToolCalls(text)).toEqual({ content: "", toolCalls: [], invalid: [text] });
  });

  it("accepts a complete call whose closing tag was cut off", () => {
    expect(parseToolCalls('<tool_call>\n{"name": "f", "arguments": {}}\n').toolCalls).toEqual([{ name: "f", arguments: "{}" }]);
    expect(parseToolCalls('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_').toolCalls).toEqual([{ name: "f", arguments: "{}" }]);
  });

  it("leaves plain text untouched, partial markers included", () => {
    expect(events("Hello\n\n")).toEqual([{ type: "content", text: "Hello\n\n" }]);
    expect(events("a <tool_c")).toEqual([{ type: "content", text: "a <tool_c" }]);
    expect(events("use <tool> tags")).toEqual([{ type: "content", text: "use <tool> tags" }]);
  });
});

describe("parseToolCalls", () => {
  it("collects content, calls and invalid blocks", () => {
    const text = `Checking both.\n${call("a", '{"x": 1}')}\n<tool_call>oops</tool_call>\n${call("b", '{"y": "2"}')}\nThat is all.`;
    expect(parseToolCalls(text)).toEqual({
      content: "Checking both.That is all.",
      toolCalls: [
        { name: "a", arguments: '{"x": 1}' },
        { name: "b", arguments: '{"y": "2"}' },
      ],
      invalid: ["<tool_call>oops</tool_call>"],
    });
  });
});
