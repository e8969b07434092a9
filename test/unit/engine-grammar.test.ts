import { describe, expect, it } from "vitest";
import { composeGrammar, namedJsonRules, prefixReferences, toolCallSchema } from "../../src/engine/grammar.js";

/** What node-llama-cpp 3.22's converter writes for {type: "array", items: {type: "string"}} (abridged). */
const CONVERTED = String.raw`root ::= "[" ws-rule ( string-rule ( "," ws-rule string-rule )* )? "]" "\n\n\n\n" [\n]*
string-char-rule ::= [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4}
string-rule ::= "\"" string-char-rule* "\""
ws-rule ::= [\n] (" "{8} | "\t\t") | [ ]?`;

describe("grammar composition", () => {
  it("prefixes rule references but not literals, classes or repetition counts", () => {
    expect(prefixReferences(String.raw`"a-rule \"q\"" [a-z\]] x-rule{0,3} (y | "z")`, "p")).toBe(String.raw`"a-rule \"q\"" [a-z\]] p-x-rule{0,3} (p-y | "z")`);
  });

  it("renames the converter's root to the given name, drops its trailing newlines and namespaces its rules", () => {
    expect(namedJsonRules(CONVERTED, "reply")).toEqual([
      String.raw`reply ::= "[" reply-ws-rule ( reply-string-rule ( "," reply-ws-rule reply-string-rule )* )? "]"`,
      String.raw`reply-string-char-rule ::= [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt] | "\\u" [0-9a-fA-F]{4}`,
      String.raw`reply-string-rule ::= "\"" reply-string-char-rule* "\""`,
      String.raw`reply-ws-rule ::= [\n] (" "{8} | "\t\t") | [ ]?`,
    ]);
  });

  it("refuses converter output of an unknown layout instead of building a wrong grammar", () => {
    expect(() => namedJsonRules('root ::= "x"', "reply")).toThrow(/unexpected layout/);
  });

  it("puts the function name first in each call object", () => {
    const schema = toolCallSchema([{ name: "f", parameters: { type: "object" } }]);
    expect(schema).toEqual({ oneOf: [{ type: "object", properties: { name: { const: "f" }, arguments: { type: "object" } } }] });
    expect(Object.keys((schema["oneOf"] as Array<{ properties: object }>)[0]!.properties)).toEqual(["name", "arguments"]);
  });

  const fake = async (_schema: unknown, name: string) => [`${name} ::= "{}"`];

  it("wraps tool calls in <tool_call> blocks, one or more", async () => {
    const one = await composeGrammar({ toolCalls: { tools: [{ name: "f", parameters: {} }], parallel: false } }, fake);
    expect(one.split("\n")).toEqual([
      String.raw`root ::= [ \n]{0,3} (tool-call)`,
      String.raw`thought-or-answer ::= [ \n]{0,3} "<think>" .* | root`,
      String.raw`tool-call ::= "<tool_call>" [ \n]{0,2} call-json [ \n]{0,2} "</tool_call>"`,
      'call-json ::= "{}"',
    ]);
    const many = await composeGrammar({ toolCalls: { tools: [{ name: "f", parameters: {} }], parallel: true } }, fake);
    expect(many.split("\n")[0]).toBe(String.raw`root ::= [ \n]{0,3} (tool-call ([ \n]{1,2} tool-call)*)`);
  });

  it("offers tool calls or the JSON reply when both are allowed", async () => {
    const both = await composeGrammar({ toolCalls: { tools: [{ name: "f", parameters: {} }], parallel: false }, json: {} }, fake);
    expect(both.split("\n")[0]).toBe(String.raw`root ::= [ \n]{0,3} (tool-call | reply-json)`);
    expect(both).toContain('reply-json ::= "{}"');
    await expect(composeGrammar({}, fake)).rejects.toThrow();
  });
});
