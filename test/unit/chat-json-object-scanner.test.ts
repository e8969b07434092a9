import { describe, expect, it } from "vitest";
import { JsonObjectScanner, type ObjectScanEvent } from "../../src/chat/json-object-scanner.js";

/** Top-level entries as [key, raw value text], fed one character at a time. */
function entries(text: string): { entries: [string, string][]; closed: boolean; ok: boolean } {
  const scanner = new JsonObjectScanner();
  const events: ObjectScanEvent[] = Array.from(text).flatMap((char) => scanner.push(char));
  const out: [string, string][] = [];
  let closed = false;
  for (const event of events) {
    if (event.type === "key") out.push([event.key, ""]);
    else if (event.type === "value") {
      const last = out.at(-1);
      if (last) last[1] += event.text;
    } else if (event.type === "object_end") closed = true;
  }
  return { entries: out, closed, ok: scanner.ok };
}

describe("JsonObjectScanner", () => {
  it("reports each top-level key and its raw value text", () => {
    const value = { name: "f", arguments: { a: "}{\"\\", b: [true, null, -1.5e3, { c: "]" }] }, n: 12, s: "é\u2028" };
    expect(entries(JSON.stringify(value, null, 1))).toEqual({
      entries: Object.entries(value).map(([key, v]) => [key, JSON.stringify(v, null, 1).replaceAll("\n", "\n ")]),
      closed: true,
      ok: true,
    });
  });

  it("decodes escaped keys and keeps literals apart from their delimiters", () => {
    expect(entries('{"k\\u0065y": 1,"t":true ,"z":null}')).toEqual({
      entries: [["key", "1"], ["t", "true"], ["z", "null"]],
      closed: true,
      ok: true,
    });
  });

  it("streams a value before it is complete", () => {
    const scanner = new JsonObjectScanner();
    expect(scanner.push('{"args": {"x": "a')).toEqual([
      { type: "key", key: "args" },
      { type: "value", text: '{"x": "a' },
    ]);
    expect(scanner.push('b"}, ')).toEqual([{ type: "value", text: 'b"}' }, { type: "value_end" }]);
  });

  it.each(["[1]", '{"a": 1}x', '{"a" 1}', '{"a": }', "{,}"])("fails on %j", (text) => {
    expect(entries(text).ok).toBe(false);
  });
});
