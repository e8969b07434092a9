import AjvCompiler from "@fastify/ajv-compiler";
import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { lazyValidators, type BuildValidator } from "../../src/server/lazy-validators.js";

const OPTIONS = { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } };
const BODY = { type: "object", required: ["model"], properties: { model: { type: "string" } } };
const QUERY = { type: "object", properties: { limit: { type: "integer" } } };
const route = (schema: object, httpPart: string) => ({ schema, method: "POST", url: "/x", httpPart });

/** Fastify's compiler, counting the schemas it compiles. */
function counting() {
  const compiled: object[] = [];
  const real = AjvCompiler();
  const build = ((external: unknown, options: unknown) => {
    const compiler = (real as (e: unknown, o: unknown) => (r: { schema: object }) => unknown)(external, options);
    return (r: { schema: object }) => {
      compiled.push(r.schema);
      return compiler(r);
    };
  }) as unknown as BuildValidator;
  return { build, compiled };
}

type Validator = ((data: unknown) => boolean) & { errors?: unknown };
const make = (build: BuildValidator, schema: object, part: string) =>
  (build as (e: unknown, o: unknown) => (r: unknown) => Validator)({}, OPTIONS)(route(schema, part));

describe("lazy request validators", () => {
  it("compile nothing when the routes are registered, and a schema on its first validation", () => {
    const { build, compiled } = counting();
    const lazy = lazyValidators(build);
    const body = make(lazy.buildValidator, BODY, "body");
    make(lazy.buildValidator, QUERY, "querystring");
    expect(compiled).toEqual([]);
    expect(body({ model: "m" })).toBe(true);
    expect(body({ model: 1 })).toBe(false);
    expect(compiled).toEqual([BODY]);
  });

  it("give the result and the errors Fastify's own validator gives", () => {
    const direct = make(AjvCompiler(), BODY, "body");
    const lazy = make(lazyValidators().buildValidator, BODY, "body");
    for (const data of [{ model: "m" }, { model: 1 }, {}, null, "text"]) {
      expect(lazy(data)).toBe(direct(data));
      expect(lazy.errors).toEqual(direct.errors);
    }
  });

  it("compileAll compiles the rest one per macrotask, and each schema once", async () => {
    const { build, compiled } = counting();
    const lazy = lazyValidators(build);
    const body = make(lazy.buildValidator, BODY, "body");
    make(lazy.buildValidator, QUERY, "querystring");
    lazy.compileAll();
    expect(compiled).toEqual([BODY]);
    await tick();
    expect(compiled).toEqual([BODY, QUERY]);
    expect(body({ model: "m" })).toBe(true);
    expect(compiled).toHaveLength(2);
  });
});
