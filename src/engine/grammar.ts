/**
 * GBNF grammars for the answer, built in the worker from a GrammarSpec. JSON values come from
 * node-llama-cpp's JSON-schema converter; the envelope around them (optional leading newlines,
 * Qwen3's `<tool_call>` blocks) is ours.
 */
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";
import type { GrammarJsonSchema, GrammarSpec } from "./types.js";

/**
 * node-llama-cpp's converter ends its root rule with four newlines, which its own chat loop uses
 * as a stop trigger. Here the grammar must end with the value, so the model can stop right there.
 */
const CONVERTER_ROOT = "root ::= ";
const CONVERTER_TAIL = String.raw` "\n\n\n\n" [\n]*`;

/**
 * Rewrites the converter's GBNF for one JSON value so that it can sit next to other rules: the
 * value becomes rule `name`, and every other rule is prefixed `name-`.
 */
export function namedJsonRules(converted: string, name: string): string[] {
  const [first, ...rest] = converted.split("\n");
  if (first === undefined || !first.startsWith(CONVERTER_ROOT) || !first.endsWith(CONVERTER_TAIL)) {
    throw new Error("node-llama-cpp's JSON schema grammar has an unexpected layout");
  }
  const root = first.slice(CONVERTER_ROOT.length, first.length - CONVERTER_TAIL.length);
  const rules = rest.filter((line) => line.trim() !== "");
  return [`${name} ::= ${prefixReferences(root, name)}`, ...rules.map((rule) => prefixRule(rule, name))];
}

function prefixRule(rule: string, prefix: string): string {
  const at = rule.indexOf(" ::= ");
  if (at <= 0) throw new Error(`unexpected GBNF rule: ${rule}`);
  return `${prefix}-${rule.slice(0, at)} ::= ${prefixReferences(rule.slice(at + 5), prefix)}`;
}

/** Prefixes every rule reference in a GBNF rule body, leaving literals, classes and counts alone. */
export function prefixReferences(body: string, prefix: string): string {
  let out = "";
  let i = 0;
  const skipTo = (close: string): void => {
    const start = i++;
    while (i < body.length && body[i] !== close) i += body[i] === "\\" ? 2 : 1;
    out += body.slice(start, ++i);
  };
  while (i < body.length) {
    const char = body[i]!;
    if (char === '"') skipTo('"');
    else if (char === "[") skipTo("]");
    else if (char === "{") skipTo("}");
    else if (/[a-zA-Z]/.test(char)) {
      const name = /^[a-zA-Z][a-zA-Z0-9-]*/.exec(body.slice(i))![0];
      out += `${prefix}-${name}`;
      i += name.length;
    } else {
      out += char;
      i++;
    }
  }
  return out;
}

/** The JSON object inside one `<tool_call>` block: `{"name": <one of the tools>, "arguments": {...}}`. */
export function toolCallSchema(tools: NonNullable<GrammarSpec["toolCalls"]>["tools"]): GrammarJsonSchema {
  return {
    oneOf: tools.map((tool) => ({
      type: "object",
      // Property order is emission order: the name first, as Qwen3 writes it and as streaming needs it.
      properties: { name: { const: tool.name }, arguments: tool.parameters },
    })),
  };
}

/**
 * The second entry rule of every grammar, for output that may open with a thought: `<think>` (the
 * thought itself is free, so nothing after it is constrained here) or the answer right away.
 */
const THOUGHT_OR_ANSWER = "thought-or-answer";

/**
 * The whole grammar. `jsonRules(schema, name)` gives the rules for one JSON value named `name`.
 * Leading newlines are allowed because the answer may start with the blank line after `</think>`.
 * Literals match text, however the model spells it: llama.cpp's grammar sampler matches each
 * token by its text (an added token like `<tool_call>` by its content), so one `<tool_call>`
 * token and the pieces `<`, `tool`, `_call`, `>` are both accepted.
 */
export async function composeGrammar(
  spec: GrammarSpec,
  jsonRules: (schema: GrammarJsonSchema, name: string) => Promise<string[]>,
): Promise<string> {
  const answers: string[] = [];
  const rules: string[] = [];
  if (spec.toolCalls) {
    answers.push(spec.toolCalls.parallel ? String.raw`tool-call ([ \n]{1,2} tool-call)*` : "tool-call");
    rules.push(String.raw`tool-call ::= "<tool_call>" [ \n]{0,2} call-json [ \n]{0,2} "</tool_call>"`);
    rules.push(...(await jsonRules(toolCallSchema(spec.toolCalls.tools), "call-json")));
  }
  if (spec.json) {
    answers.push("reply-json");
    rules.push(...(await jsonRules(spec.json, "reply-json")));
  }
  if (answers.length === 0) throw new Error("a grammar spec needs toolCalls or json");
  return [
    String.raw`root ::= [ \n]{0,3} (${answers.join(" | ")})`,
    String.raw`${THOUGHT_OR_ANSWER} ::= [ \n]{0,3} "<think>" .* | root`,
    ...rules,
  ].join("\n");
}

/** One spec's grammar, entered at either rule. */
export interface AnswerGrammars {
  /** The answer and nothing else. */
  readonly answer: LlamaGrammar;
  /** `<think>` or the answer: for output that has not yet shown whether it thinks first. */
  readonly thoughtOrAnswer: LlamaGrammar;
}

/**
 * Grammars by spec. Agents send the same tools on every turn, so each distinct spec is converted
 * and parsed once; the bound only matters if every request brings a new schema.
 */
export class GrammarCache {
  readonly #llama: Llama;
  readonly #grammars = new Map<string, Promise<AnswerGrammars>>();
  readonly #capacity: number;

  constructor(llama: Llama, capacity = 32) {
    this.#llama = llama;
    this.#capacity = capacity;
  }

  get(spec: GrammarSpec): Promise<AnswerGrammars> {
    const key = JSON.stringify(spec);
    const cached = this.#grammars.get(key);
    if (cached) {
      this.#grammars.delete(key);
      this.#grammars.set(key, cached);
      return cached;
    }
    const built = this.#build(spec);
    // A failed build is not kept: the next request retries instead of getting a cached failure.
    built.catch(() => {
      if (this.#grammars.get(key) === built) this.#grammars.delete(key);
    });
    this.#grammars.set(key, built);
    if (this.#grammars.size > this.#capacity) this.#grammars.delete(this.#grammars.keys().next().value!);
    return built;
  }

  async #build(spec: GrammarSpec): Promise<AnswerGrammars> {
    const gbnf = await composeGrammar(spec, async (schema, name) => {
      const converted = await this.#llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema as GbnfJsonSchema);
      return namedJsonRules(converted.grammar, name);
    });
    const [answer, thoughtOrAnswer] = await Promise.all([
      this.#llama.createGrammar({ grammar: gbnf }),
      this.#llama.createGrammar({ grammar: gbnf, rootRuleName: THOUGHT_OR_ANSWER }),
    ]);
    return { answer, thoughtOrAnswer };
  }
}
