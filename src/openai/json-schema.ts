/**
 * Client JSON Schemas (response_format, forced tool parameters) checked and translated into the
 * dialect of node-llama-cpp's grammar converter (GbnfJsonSchema) before a request is accepted.
 * The converter silently drops keywords it does not know, so the output would not match the
 * schema: anything it cannot enforce is a 400 naming the keyword instead.
 *
 * Differences the translation makes on purpose (the output still validates against the schema):
 * - every declared property is generated, also those not in `required` (the converter knows no
 *   optional properties);
 * - an object with declared properties gets no others unless `additionalProperties` says so;
 * - `anyOf` becomes `oneOf` (a generated value matches at least one branch either way).
 */
import type { GrammarJsonSchema } from "../engine/types.js";
import { invalidRequest } from "./errors.js";

/** Keywords that describe without constraining: accepted, and not passed on. */
const ANNOTATIONS = new Set(["title", "description", "$schema", "$id", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly"]);

const TYPE_KEYWORDS: Record<string, readonly string[]> = {
  object: ["properties", "required", "additionalProperties", "minProperties", "maxProperties"],
  array: ["items", "prefixItems", "minItems", "maxItems"],
  string: ["minLength", "maxLength", "format"],
  number: [],
  integer: [],
  boolean: [],
  null: [],
};
const SCALAR_TYPES = new Set(["string", "number", "integer", "boolean", "null"]);
const FORMATS = new Set(["date-time", "date", "time"]);
const COUNTS = new Set(["minProperties", "maxProperties", "minItems", "maxItems", "minLength", "maxLength"]);

/** Any JSON value. */
const ANY_VALUE: GrammarJsonSchema = {
  oneOf: [{ type: ["string", "number", "boolean", "null"] }, { type: "array" }, { type: "object", additionalProperties: true }],
};
/** Any JSON object (json_object mode). */
export const ANY_OBJECT: GrammarJsonSchema = { type: "object", additionalProperties: true };

type Node = Record<string, unknown>;

const isNode = (value: unknown): value is Node => typeof value === "object" && value !== null && !Array.isArray(value);

function unsupported(path: string, keyword: string, why = "the grammar that enforces the output cannot express it"): Error {
  return invalidRequest(`JSON Schema keyword '${keyword}' at '${path}' is not supported: ${why}`, `${path}.${keyword}`, "unsupported_schema");
}

function invalid(path: string, message: string): Error {
  return invalidRequest(`Invalid JSON Schema at '${path}': ${message}`, path, "invalid_schema");
}

/** Translates `schema` (found at request field `param`) or throws a 400 naming what it cannot enforce. */
export function toGrammarSchema(schema: unknown, param: string): GrammarJsonSchema {
  if (!isNode(schema)) return new Translator({}, param).convert(schema, param);
  const defs: Node = {};
  for (const key of ["definitions", "$defs"] as const) {
    const group = schema[key];
    if (group === undefined) continue;
    if (!isNode(group)) throw invalid(`${param}.${key}`, "must be an object of schemas");
    Object.assign(defs, group);
  }
  const translator = new Translator(defs, param);
  const { definitions: _definitions, $defs: _defs, ...rest } = schema;
  const root = translator.convert(rest, param);
  const convertedDefs = Object.fromEntries(Object.entries(defs).map(([name, def]) => [name, translator.convert(def, `${param}.$defs.${name}`)]));
  return Object.keys(convertedDefs).length ? { ...root, $defs: convertedDefs } : root;
}

class Translator {
  constructor(
    private readonly defs: Node,
    private readonly root: string,
  ) {}

  convert(node: unknown, path: string): GrammarJsonSchema {
    if (node === true) return ANY_VALUE;
    if (node === false) throw invalid(path, "the schema `false` allows no value at all");
    if (!isNode(node)) throw invalid(path, "must be an object");
    const keys = Object.keys(node).filter((k) => !ANNOTATIONS.has(k));
    for (const key of keys) {
      if (key === "$defs" || key === "definitions") throw unsupported(path, key, "definitions are only read at the top level of the schema");
    }
    const alone = (keyword: string) => {
      const other = keys.find((k) => k !== keyword);
      if (other !== undefined) throw unsupported(path, other, `it cannot be combined with '${keyword}'`);
    };

    if ("$ref" in node) {
      alone("$ref");
      return { $ref: this.ref(node["$ref"], path) };
    }
    for (const keyword of ["anyOf", "oneOf", "allOf"] as const) {
      if (!(keyword in node)) continue;
      alone(keyword);
      const branches = node[keyword];
      if (!Array.isArray(branches) || branches.length === 0) throw invalid(`${path}.${keyword}`, "must be a non-empty array of schemas");
      if (keyword === "allOf") {
        if (branches.length > 1) throw unsupported(path, keyword, "only a single-schema allOf can be enforced");
        return this.convert(branches[0], `${path}.allOf[0]`);
      }
      return { oneOf: branches.map((branch, i) => this.convert(branch, `${path}.${keyword}[${i}]`)) };
    }
    if ("const" in node || "enum" in node) return this.literal(node, keys, path);

    const types = this.types(node, keys, path);
    for (const key of keys) {
      if (key !== "type" && !types.some((t) => TYPE_KEYWORDS[t]!.includes(key))) throw unsupported(path, key);
    }
    if (types.length === 0) return ANY_VALUE;
    if (keys.every((k) => k === "type") && types.every((t) => SCALAR_TYPES.has(t))) {
      return { type: types.length === 1 ? types[0] : types };
    }
    const branches = types.map((t) => this.typed(t, node, path));
    return branches.length === 1 ? branches[0]! : { oneOf: branches };
  }

  /** The types a node allows: its `type`, or what its keywords imply. Empty = any value. */
  private types(node: Node, keys: string[], path: string): string[] {
    const type = node["type"];
    if (type === undefined) {
      const implied = Object.keys(TYPE_KEYWORDS).filter((t) => TYPE_KEYWORDS[t]!.some((k) => keys.includes(k)));
      if (implied.length > 1) throw invalid(path, "its keywords belong to different types; give 'type'");
      return implied;
    }
    const list = Array.isArray(type) ? type : [type];
    if (list.length === 0 || list.some((t) => typeof t !== "string" || !(t in TYPE_KEYWORDS))) {
      throw invalid(`${path}.type`, `must be one of ${Object.keys(TYPE_KEYWORDS).join(", ")} or an array of them`);
    }
    return [...new Set(list as string[])];
  }

  private typed(type: string, node: Node, path: string): GrammarJsonSchema {
    const out: GrammarJsonSchema = { type };
    for (const key of TYPE_KEYWORDS[type]!) {
      const value = node[key];
      if (value === undefined) continue;
      if (COUNTS.has(key) && !(Number.isInteger(value) && (value as number) >= 0)) throw invalid(`${path}.${key}`, "must be a non-negative integer");
      out[key] = value;
    }
    if (type === "string" && out["format"] !== undefined && !FORMATS.has(out["format"] as string)) {
      throw unsupported(path, "format", `only ${[...FORMATS].join(", ")} can be enforced`);
    }
    if (type === "object") return this.object(node, out, path);
    if (type === "array") return this.array(node, out, path);
    return out;
  }

  private object(node: Node, out: GrammarJsonSchema, path: string): GrammarJsonSchema {
    const properties = node["properties"];
    if (properties !== undefined && !isNode(properties)) throw invalid(`${path}.properties`, "must be an object of schemas");
    const names = Object.keys(properties ?? {});
    const required = node["required"];
    if (required !== undefined) {
      if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) throw invalid(`${path}.required`, "must be an array of property names");
      const missing = required.find((r) => !names.includes(r as string));
      if (missing !== undefined) throw unsupported(path, "required", `'${String(missing)}' is required but not declared in 'properties', so it cannot be generated`);
    }
    delete out["required"];
    if (properties) {
      out["properties"] = Object.fromEntries(names.map((name) => [name, this.convert(properties[name], `${path}.properties.${name}`)]));
    }
    const additional = node["additionalProperties"];
    if (additional === undefined) out["additionalProperties"] = names.length === 0;
    else if (typeof additional !== "boolean") out["additionalProperties"] = this.convert(additional, `${path}.additionalProperties`);
    return out;
  }

  private array(node: Node, out: GrammarJsonSchema, path: string): GrammarJsonSchema {
    const prefix = node["prefixItems"];
    if (prefix !== undefined) {
      if (!Array.isArray(prefix)) throw invalid(`${path}.prefixItems`, "must be an array of schemas");
      out["prefixItems"] = prefix.map((item, i) => this.convert(item, `${path}.prefixItems[${i}]`));
    }
    const items = node["items"];
    if (Array.isArray(items)) throw unsupported(path, "items", "use 'prefixItems' for tuples");
    if (items === false) {
      delete out["items"];
      out["maxItems"] = Array.isArray(prefix) ? prefix.length : 0;
    } else if (items !== undefined) {
      out["items"] = this.convert(items, `${path}.items`);
    }
    return out;
  }

  private literal(node: Node, keys: string[], path: string): GrammarJsonSchema {
    const keyword = "const" in node ? "const" : "enum";
    const other = keys.find((k) => k !== keyword && k !== "type");
    if (other !== undefined) throw unsupported(path, other, `it cannot be combined with '${keyword}'`);
    const values = keyword === "const" ? [node["const"]] : node["enum"];
    if (!Array.isArray(values) || values.length === 0) throw invalid(`${path}.enum`, "must be a non-empty array");
    if (values.some((v) => v !== null && typeof v === "object")) {
      throw unsupported(path, keyword, "only strings, numbers, booleans and null can be enforced as values");
    }
    return keyword === "const" ? { const: node["const"] } : { enum: values };
  }

  private ref(ref: unknown, path: string): string {
    const match = typeof ref === "string" ? /^#\/(?:\$defs|definitions)\/(.+)$/.exec(ref) : null;
    if (!match) throw unsupported(path, "$ref", "only references to '#/$defs/…' or '#/definitions/…' can be followed");
    const name = match[1]!.replaceAll("~1", "/").replaceAll("~0", "~");
    if (!(name in this.defs)) throw invalid(`${path}.$ref`, `'${String(ref)}' is not defined in '${this.root}'`);
    return `#/$defs/${name}`;
  }
}
