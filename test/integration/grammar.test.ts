/**
 * Grammars built from translated client schemas must parse in llama.cpp: a grammar that does not
 * parse would fail a request after it was accepted. Uses the real addon, no model.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getLlama, type Llama } from "node-llama-cpp";
import { GrammarCache } from "../../src/engine/grammar.js";
import { ANY_OBJECT, toGrammarSchema } from "../../src/openai/json-schema.js";
import type { GrammarSpec } from "../../src/engine/types.js";

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never" });
});
afterAll(() => llama?.dispose());

const pydanticStyle = toGrammarSchema(
  {
    $defs: {
      Stop: { type: "object", properties: { city: { type: "string" }, nights: { type: "integer" } }, required: ["city", "nights"] },
      Tree: { type: "object", properties: { label: { type: "string" }, children: { type: "array", items: { $ref: "#/$defs/Tree" } } } },
    },
    type: "object",
    properties: {
      stops: { type: "array", items: { $ref: "#/$defs/Stop" }, minItems: 1 },
      budget: { anyOf: [{ type: "number" }, { type: "null" }] },
      outline: { $ref: "#/$defs/Tree" },
      when: { type: "string", format: "date-time" },
    },
    required: ["stops"],
  },
  "schema",
);

describe("GrammarCache on the real addon", () => {
  it.each<[string, GrammarSpec]>([
    ["any JSON object", { json: ANY_OBJECT }],
    ["a schema with $defs, recursion, anyOf and formats", { json: pydanticStyle }],
    ["tool calls whose arguments use $defs", { toolCalls: { tools: [{ name: "plan", parameters: pydanticStyle }, { name: "noop", parameters: { type: "object", properties: {} } }], parallel: true } }],
    ["tool calls or a JSON reply", { toolCalls: { tools: [{ name: "f", parameters: ANY_OBJECT }], parallel: false }, json: { type: "array", items: { type: "boolean" } } }],
  ])("builds a grammar llama.cpp parses: %s", async (_name, spec) => {
    const { answer, thoughtOrAnswer } = await new GrammarCache(llama).get(spec);
    expect(answer.grammar.split("\n")[0]).toMatch(/^root ::= /);
    expect(answer.rootRuleName).toBe("root");
    expect(thoughtOrAnswer.grammar).toBe(answer.grammar);
    expect(thoughtOrAnswer.rootRuleName).toBe("thought-or-answer");
  });

  it("builds each distinct spec once", async () => {
    const cache = new GrammarCache(llama, 2);
    const spec: GrammarSpec = { json: { type: "boolean" } };
    const first = await cache.get(spec);
    expect(await cache.get({ json: { type: "boolean" } })).toBe(first);
    await cache.get({ json: { type: "null" } });
    await cache.get({ json: { type: "string" } });
    // Capacity 2: the least recently used spec was dropped and is built anew.
    expect(await cache.get(spec)).not.toBe(first);
  });
});
