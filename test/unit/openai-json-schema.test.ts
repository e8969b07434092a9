import { describe, expect, it } from "vitest";
import { ANY_OBJECT, toGrammarSchema } from "../../src/openai/json-schema.js";
import { ApiError } from "../../src/openai/errors.js";

const P = "response_format.json_schema.schema";

function rejection(schema: unknown): ApiError {
  try {
    toGrammarSchema(schema, P);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected a 400");
}

describe("toGrammarSchema", () => {
  it("passes what node-llama-cpp enforces, dropping annotations", () => {
    expect(
      toGrammarSchema(
        {
          $schema: "https://json-schema.org/draft/2020-12/schema",
          title: "Trip",
          description: "a trip",
          type: "object",
          properties: {
            city: { type: "string", minLength: 1, maxLength: 40, description: "where" },
            when: { type: "string", format: "date" },
            days: { type: "integer", default: 3 },
            tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 5 },
            mode: { enum: ["car", "train", null] },
            kind: { const: "trip" },
          },
          required: ["city", "days"],
          additionalProperties: false,
        },
        P,
      ),
    ).toEqual({
      type: "object",
      properties: {
        city: { type: "string", minLength: 1, maxLength: 40 },
        when: { type: "string", format: "date" },
        days: { type: "integer" },
        tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 5 },
        mode: { enum: ["car", "train", null] },
        kind: { const: "trip" },
      },
      additionalProperties: false,
    });
  });

  it("reads an object without declared properties as any object, and one with properties as closed", () => {
    expect(toGrammarSchema({ type: "object" }, P)).toEqual(ANY_OBJECT);
    expect(toGrammarSchema({ type: "object", properties: { a: { type: "null" } } }, P)).toEqual({
      type: "object",
      properties: { a: { type: "null" } },
      additionalProperties: false,
    });
    expect(toGrammarSchema({ type: "object", additionalProperties: { type: "number" } }, P)).toEqual({
      type: "object",
      additionalProperties: { type: "number" },
    });
  });

  it("turns anyOf, type lists with constraints and single allOf into what the converter knows", () => {
    expect(toGrammarSchema({ anyOf: [{ type: "string" }, { type: "null" }] }, P)).toEqual({ oneOf: [{ type: "string" }, { type: "null" }] });
    expect(toGrammarSchema({ type: ["string", "null"] }, P)).toEqual({ type: ["string", "null"] });
    expect(toGrammarSchema({ type: ["string", "null"], maxLength: 3 }, P)).toEqual({ oneOf: [{ type: "string", maxLength: 3 }, { type: "null" }] });
    expect(toGrammarSchema({ allOf: [{ type: "boolean" }] }, P)).toEqual({ type: "boolean" });
  });

  it("infers the type from the keywords when `type` is missing, and reads {} as any value", () => {
    expect(toGrammarSchema({ properties: { a: {} } }, P)).toMatchObject({ type: "object", properties: { a: { oneOf: expect.any(Array) } } });
    expect(toGrammarSchema({}, P)).toEqual(toGrammarSchema(true, P));
  });

  it("moves definitions / $defs to the top as $defs and rewrites the references", () => {
    expect(
      toGrammarSchema(
        {
          type: "object",
          properties: { home: { $ref: "#/definitions/Place" }, away: { $ref: "#/$defs/Place" } },
          definitions: { Place: { type: "object", properties: { name: { type: "string" } } } },
        },
        P,
      ),
    ).toEqual({
      type: "object",
      properties: { home: { $ref: "#/$defs/Place" }, away: { $ref: "#/$defs/Place" } },
      additionalProperties: false,
      $defs: { Place: { type: "object", properties: { name: { type: "string" } }, additionalProperties: false } },
    });
  });

  it("turns items: false into a length limit", () => {
    expect(toGrammarSchema({ type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false }, P)).toEqual({
      type: "array",
      prefixItems: [{ type: "string" }, { type: "integer" }],
      maxItems: 2,
    });
  });

  it.each([
    [{ type: "string", pattern: "^a" }, "pattern", P],
    [{ type: "object", properties: { n: { type: "number", minimum: 0 } } }, "minimum", `${P}.properties.n`],
    [{ type: "number", multipleOf: 2 }, "multipleOf", P],
    [{ type: "array", uniqueItems: true }, "uniqueItems", P],
    [{ type: "object", patternProperties: { "^x": {} } }, "patternProperties", P],
    [{ type: "string", format: "email" }, "format", P],
    [{ not: { type: "null" } }, "not", P],
    [{ allOf: [{ type: "string" }, { maxLength: 2 }] }, "allOf", P],
    [{ type: "object", anyOf: [{ required: ["a"] }] }, "type", P],
    [{ $ref: "#" }, "$ref", P],
    [{ $ref: "https://example.com/schema.json" }, "$ref", P],
    [{ enum: [{ a: 1 }] }, "enum", P],
    [{ type: "object", properties: { a: { type: "string" } }, required: ["b"] }, "required", P],
    [{ type: "object", properties: { a: { $defs: {}, type: "string" } } }, "$defs", `${P}.properties.a`],
    [{ type: "array", items: [{ type: "string" }] }, "items", P],
  ])("rejects %j naming '%s'", (schema, keyword, at) => {
    const err = rejection(schema);
    expect(err.status).toBe(400);
    expect(err.code).toBe("unsupported_schema");
    expect(err.param).toBe(`${at}.${keyword}`);
    expect(err.message).toContain(`'${keyword}'`);
  });

  it.each([
    [false, P],
    ["string", P],
    [{ type: "decimal" }, `${P}.type`],
    [{ type: "string", maxLength: -1 }, `${P}.maxLength`],
    [{ anyOf: [] }, `${P}.anyOf`],
    [{ $ref: "#/$defs/Missing" }, `${P}.$ref`],
    [{ type: "object", properties: [] }, `${P}.properties`],
  ])("rejects the invalid schema %j", (schema, param) => {
    const err = rejection(schema);
    expect(err.code).toBe("invalid_schema");
    expect(err.param).toBe(param);
  });
});
