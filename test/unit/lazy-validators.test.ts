import AjvCompiler from "@fastify/ajv-compiler";
import Fastify from "fastify";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { ajvCompiler, lazySerializers, lazyValidators, type BuildValidator, type RouteCompiler } from "../../src/server/lazy-validators.js";
import { ChatCompletionRequest } from "../../src/openai/schema.js";

const OPTIONS = { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } };
const BODY = { type: "object", required: ["model"], properties: { model: { type: "string" } } };
const QUERY = { type: "object", properties: { limit: { type: "integer" } } };
const route = (schema: object, httpPart: string, url = "/x") => ({ schema, method: "POST", url, httpPart });

/** Fastify's compiler (standalone code on or off), counting the schemas it compiles. */
function counting(standalone = false) {
  const compiled: object[] = [];
  const real = ajvCompiler(standalone);
  const compiler: RouteCompiler = (external, options) => {
    const forRoute = real(external, options);
    return (r) => {
      compiled.push(r.schema as object);
      return forRoute(r);
    };
  };
  return { compiler, compiled };
}

type Validator = ((data: unknown) => boolean) & { errors?: unknown };
const make = (build: unknown, schema: object, part: string, url?: string) => (build as BuildValidator)({}, OPTIONS)(route(schema, part, url)) as Validator;

const asJson = (value: unknown) => JSON.parse(JSON.stringify(value ?? null)) as unknown;

const CHAT_INPUTS: unknown[] = [
  { model: "m", messages: [{ role: "user", content: "hi" }] },
  { model: "m", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], temperature: 0.5, max_tokens: 8 },
  { model: "m", messages: [] },
  { model: "m", messages: [{ role: "wizard", content: "hi" }] },
  { model: "m", messages: [{ role: "user", content: "hi" }], temperature: "hot" },
  { model: 3, messages: [{ role: "user", content: "hi" }] },
  { messages: "hi" },
  null,
];

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "edgellm-validators-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("lazy request validators", () => {
  it("compile nothing when the routes are registered, and a schema on its first validation", () => {
    const { compiler, compiled } = counting();
    const lazy = lazyValidators({ compiler });
    const body = make(lazy.buildValidator, BODY, "body");
    make(lazy.buildValidator, QUERY, "querystring");
    expect(compiled).toEqual([]);
    expect(body({ model: "m" })).toBe(true);
    expect(body({ model: 1 })).toBe(false);
    expect(compiled).toEqual([BODY]);
  });

  it("give the result and the errors Fastify's own validator gives, compiled or read back from the cache", () => {
    const dir = tempDir();
    const direct = make(AjvCompiler(), ChatCompletionRequest, "body");
    const lazy = make(lazyValidators().buildValidator, ChatCompletionRequest, "body");
    const writing = make(lazyValidators({ cacheDir: dir }).buildValidator, ChatCompletionRequest, "body");
    const { compiler, compiled } = counting(true);
    const reading = make(lazyValidators({ cacheDir: dir, compiler }).buildValidator, ChatCompletionRequest, "body");
    let failures = 0;
    for (const data of CHAT_INPUTS) {
      const expected = direct(data);
      if (!expected) failures++;
      for (const v of [lazy, writing, reading]) {
        expect(v(data)).toBe(expected);
        // As JSON: the cached code's schema constants lack the TypeBox symbols the live schema carries.
        expect(asJson(v.errors)).toEqual(asJson(direct.errors));
      }
      // The first validation wrote the file; the reading validator never compiled.
      expect(compiled).toEqual([]);
    }
    expect(failures).toBe(6);
  });

  it("compileAll compiles the rest one per macrotask, and each schema once", async () => {
    const { compiler, compiled } = counting();
    const lazy = lazyValidators({ compiler });
    const body = make(lazy.buildValidator, BODY, "body");
    make(lazy.buildValidator, QUERY, "querystring");
    lazy.compileAll();
    expect(compiled).toEqual([BODY]);
    await tick();
    expect(compiled).toEqual([BODY, QUERY]);
    expect(body({ model: "m" })).toBe(true);
    expect(compiled).toHaveLength(2);
  });

  it("keep one file per route and part, which a later start reads instead of compiling", async () => {
    const dir = tempDir();
    const first = counting(true);
    const writer = lazyValidators({ cacheDir: dir, compiler: first.compiler });
    make(writer.buildValidator, BODY, "body", "/a");
    make(writer.buildValidator, QUERY, "querystring", "/a");
    make(writer.buildValidator, BODY, "body", "/b");
    writer.compileAll();
    for (let i = 0; i < 3; i++) await tick();
    expect(first.compiled).toHaveLength(3);
    expect(readdirSync(dir).filter((f) => f.endsWith(".cjs"))).toHaveLength(3);
    expect(readdirSync(dir).filter((f) => !f.endsWith(".cjs"))).toEqual([]);

    const second = counting(true);
    const reader = lazyValidators({ cacheDir: dir, compiler: second.compiler });
    const body = make(reader.buildValidator, BODY, "body", "/a");
    const query = make(reader.buildValidator, QUERY, "querystring", "/a");
    expect(body({ model: "m" })).toBe(true);
    expect(body({})).toBe(false);
    expect(query({ limit: 1.5 })).toBe(false);
    expect(second.compiled).toEqual([]);
  });

  it("compile again, and replace the file, when the schema changed or the file is damaged or not theirs", () => {
    const dir = tempDir();
    make(lazyValidators({ cacheDir: dir }).buildValidator, BODY, "body")({});
    const [name] = readdirSync(dir);
    const file = join(dir, name!);
    const original = readFileSync(file, "utf8");

    // Another schema on the same route: compiled, and the file now holds it.
    const changed = { ...BODY, required: [] };
    const afterChange = counting(true);
    const relaxed = make(lazyValidators({ cacheDir: dir, compiler: afterChange.compiler }).buildValidator, changed, "body");
    expect(relaxed({})).toBe(true);
    expect(afterChange.compiled).toEqual([changed]);
    expect(readFileSync(file, "utf8")).not.toBe(original);

    // A damaged file (its code no longer matches the hash on its first line) and one that is not a cache file.
    const [header, ...code] = original.split("\n");
    for (const content of [`${header}\n${code.join("\n").replace("return", "return true;")}`, "module.exports = () => true;\n", ""]) {
      writeFileSync(file, content);
      const again = counting(true);
      const strict = make(lazyValidators({ cacheDir: dir, compiler: again.compiler }).buildValidator, BODY, "body");
      expect(strict({})).toBe(false);
      expect(again.compiled).toEqual([BODY]);
      expect(readFileSync(file, "utf8")).toBe(original);
    }
  });

  it("compile at every start when the directory cannot be written", () => {
    const dir = tempDir();
    const notADir = join(dir, "file");
    writeFileSync(notADir, "");
    for (let start = 0; start < 2; start++) {
      const { compiler, compiled } = counting(true);
      const body = make(lazyValidators({ cacheDir: notADir, compiler }).buildValidator, BODY, "body");
      expect(body({ model: "m" })).toBe(true);
      expect(body({})).toBe(false);
      expect(compiled).toEqual([BODY]);
    }
  });
});

describe("lazy response serializers", () => {
  it("serialize a route with a response schema as Fastify's own compiler does", async () => {
    const app = Fastify({ schemaController: { compilersFactory: { buildSerializer: lazySerializers() } } });
    const response = { 200: { type: "object", properties: { id: { type: "string" }, n: { type: "integer" } } } };
    app.get("/r", { schema: { response } }, async () => ({ id: "a", n: 2, secret: "dropped" }));
    app.get("/plain", async () => ({ id: "a", secret: "kept" }));
    const withSchema = await app.inject("/r");
    expect(withSchema.body).toBe('{"id":"a","n":2}');
    expect((await app.inject("/plain")).json()).toEqual({ id: "a", secret: "kept" });
    await app.close();
  });
});
