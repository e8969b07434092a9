/**
 * Request validators compiled when first needed instead of when the routes are registered, and
 * kept on disk once compiled; and Fastify's response serializer compiler loaded only if used.
 *
 * Fastify compiles every route's JSON schema with Ajv before the server listens: about 0.5 s of
 * CPU here (20 schemas, the chat request's alone about 0.1 s), on the cold start's path and on
 * the core the model worker is loading on. Each route's validator is the same Ajv function
 * (Fastify's own compiler, same options), made on its first request or by `compileAll` once the
 * server listens, whichever comes first.
 *
 * With `cacheDir` (`validators/` in the data directory) a compiled validator's code is written
 * there, as Ajv's standalone code (`@fastify/ajv-compiler`'s `StandaloneValidator`), and a later
 * start evaluates that code instead of compiling: 30 to 50 ms for all 20 routes here, without
 * loading Ajv. One file per route and part; its first line holds the key it was made for (the
 * schema, the shared schemas, the Ajv options and the versions of Ajv, its formats and Fastify's
 * compiler) and the code's hash. A file that does not match, or cannot be read or evaluated, is
 * compiled again and replaced; an unwritable directory only means compiling every start.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { FastifyRouteSchemaDef, FastifyValidationResult } from "fastify/types/schema.js";

type Validate = FastifyValidationResult;
type Route = FastifyRouteSchemaDef<unknown>;
/** Fastify's `ajv` server option, as it hands it to `buildValidator`. */
interface AjvOptions {
  customOptions?: object;
  plugins?: unknown[];
}

/** A validator and, when the compiler made it, its standalone code. */
export interface Compiled {
  validate: Validate;
  code?: string;
}
/** Like Fastify's `buildValidator`, for one set of shared schemas and options, then per route. */
export type RouteCompiler = (externalSchemas: unknown, options?: AjvOptions) => (route: Route) => Compiled;
/** What Fastify calls `buildValidator` with, and what it expects back. */
export type BuildValidator = (externalSchemas: unknown, options?: AjvOptions) => (route: Route) => Validate;

export interface LazyValidators {
  /** For Fastify's `schemaController.compilersFactory.buildValidator` (typed as the option is). */
  buildValidator: ReturnType<AjvCompilerModule["AjvCompiler"]>;
  /** Compiles (or reads back) the validators not made yet, one per macrotask so requests are not held up. */
  compileAll(): void;
}

const require = createRequire(import.meta.url);
type AjvCompilerModule = typeof import("@fastify/ajv-compiler");

/** Fastify's own compiler (`@fastify/ajv-compiler`), loaded on first use; with `standalone`, through its `StandaloneValidator`. */
export function ajvCompiler(standalone: boolean): RouteCompiler {
  let build: ((e: unknown, o?: AjvOptions) => (route: Route) => Validate) | undefined;
  let code: string | undefined;
  return (externalSchemas, options) => {
    const { AjvCompiler, StandaloneValidator } = require("@fastify/ajv-compiler") as AjvCompilerModule;
    build ??= (standalone ? StandaloneValidator({ readMode: false, storeFunction: (_route, source) => void (code = source) }) : AjvCompiler()) as unknown as typeof build;
    const compile = build!(externalSchemas, options);
    return (route) => {
      code = undefined;
      const validate = compile(route);
      return { validate, code };
    };
  };
}

/** The packages the generated code depends on, and the `require` it is evaluated with: Ajv as Fastify's compiler resolves it. */
const runtime = (() => {
  let cached: { require: NodeRequire; versions: string } | undefined;
  return () => {
    if (cached) return cached;
    const compilerRequire = createRequire(require.resolve("@fastify/ajv-compiler"));
    const version = (name: string) => {
      try {
        return (JSON.parse(readFileSync(compilerRequire.resolve(`${name}/package.json`), "utf8")) as { version: string }).version;
      } catch {
        return "unknown";
      }
    };
    const versions = ["@fastify/ajv-compiler", "ajv", "ajv-formats"].map((name) => `${name}@${version(name)}`).join(" ");
    return (cached = { require: compilerRequire, versions });
  };
})();

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The validator a cache file holds for `key`, or undefined when it holds another, a damaged one or none. */
function readCached(file: string, key: string): Validate | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  const newline = text.indexOf("\n");
  const [tag, storedKey, codeHash] = text.slice(0, newline).split(" ");
  const code = text.slice(newline + 1);
  if (newline < 0 || tag !== "//" || storedKey !== key || codeHash !== sha256(code)) return undefined;
  try {
    const module = { exports: {} as unknown };
    new Function("module", "exports", "require", code)(module, module.exports, runtime().require);
    return typeof module.exports === "function" ? (module.exports as Validate) : undefined;
  } catch {
    return undefined;
  }
}

function writeCached(dir: string, file: string, key: string, code: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `// ${key} ${sha256(code)}\n${code}`);
    renameSync(tmp, file);
  } catch {
    // A read-only data directory: the validator is compiled at every start.
  }
}

/**
 * `cacheDir`: where compiled validators are kept (none: compile at every start). `compiler`: the
 * compiler to defer, Fastify's own by default.
 */
export function lazyValidators(options: { cacheDir?: string; compiler?: RouteCompiler } = {}): LazyValidators {
  const { cacheDir } = options;
  const compiler = options.compiler ?? ajvCompiler(cacheDir !== undefined);
  const pending = new Set<() => void>();
  const buildValidator: BuildValidator = (externalSchemas, ajvOptions = {}) => {
    let compilerForRoute: ((route: Route) => Compiled) | undefined;
    // A copy: `StandaloneValidator` sets `code.source` in the options it is given, which would change the key.
    const compileNow = (route: Route) => (compilerForRoute ??= compiler(externalSchemas, { ...ajvOptions }))(route);
    return (route) => {
      let validate: Validate | undefined;
      const make = (): Validate => {
        // An Ajv plugin is code the key cannot capture: no cache then (the server passes none).
        if (!cacheDir || ajvOptions.plugins?.length) return compileNow(route).validate;
        const file = join(cacheDir, `${sha256(`${route.method} ${route.url} ${route.httpPart}`).slice(0, 24)}.cjs`);
        const key = sha256(JSON.stringify([route.schema, externalSchemas, ajvOptions.customOptions ?? {}, runtime().versions]));
        const cached = readCached(file, key);
        if (cached) return cached;
        const compiled = compileNow(route);
        if (compiled.code !== undefined) writeCached(cacheDir, file, key, compiled.code);
        return compiled.validate;
      };
      const compile = () => {
        pending.delete(compile);
        return (validate ??= make());
      };
      pending.add(compile);
      const lazy: Validate = (data: unknown) => {
        const v = compile();
        const result = v(data);
        lazy.errors = v.errors;
        return result;
      };
      return lazy;
    };
  };
  const compileAll = () => {
    const next = pending.values().next();
    if (next.done) return;
    next.value();
    setImmediate(compileAll).unref();
  };
  return { buildValidator: buildValidator as unknown as LazyValidators["buildValidator"], compileAll };
}

type SerializerModule = typeof import("@fastify/fast-json-stringify-compiler");
type BuildSerializer = ReturnType<SerializerModule["SerializerSelector"]>;

/**
 * For `schemaController.compilersFactory.buildSerializer`: Fastify's own serializer compiler,
 * loaded when a route with a response schema first needs it. No route has one, and Fastify
 * otherwise loads it (fast-json-stringify, which loads Ajv) when the server is built: about
 * 0.1 s of CPU at every start.
 */
export function lazySerializers(): BuildSerializer {
  let build: BuildSerializer | undefined;
  return (externalSchemas, options) => (build ??= (require("@fastify/fast-json-stringify-compiler") as SerializerModule).SerializerSelector())(externalSchemas, options);
}
