/**
 * Request validators compiled when first needed instead of when the routes are registered.
 * Fastify compiles every route's JSON schema with Ajv before the server listens: about 0.6 s of
 * CPU here, on the cold start's path and on the core the model worker is loading on. Each route's
 * validator is now the same Ajv function (Fastify's own compiler, same options), compiled on its
 * first request or by `compileAll` once the server listens, whichever comes first.
 */
import AjvCompiler from "@fastify/ajv-compiler";
import type { FastifySchemaCompiler } from "fastify";
import type { FastifyValidationResult } from "fastify/types/schema.js";

export type BuildValidator = ReturnType<typeof AjvCompiler>;

export interface LazyValidators {
  /** For Fastify's `schemaController.compilersFactory.buildValidator`. */
  buildValidator: BuildValidator;
  /** Compiles the validators not compiled yet, one per macrotask so requests are not held up. */
  compileAll(): void;
}

/** `build`: the compiler to defer (Fastify's default, `@fastify/ajv-compiler`). */
export function lazyValidators(build: BuildValidator = AjvCompiler()): LazyValidators {
  const pending = new Set<() => void>();
  const buildValidator = ((externalSchemas: unknown, options: unknown) => {
    let compiler: FastifySchemaCompiler<unknown> | undefined;
    const compilerFor = () => (compiler ??= (build as (s: unknown, o: unknown) => FastifySchemaCompiler<unknown>)(externalSchemas, options));
    return (routeSchema: Parameters<FastifySchemaCompiler<unknown>>[0]): FastifyValidationResult => {
      let validate: FastifyValidationResult | undefined;
      const compile = () => {
        pending.delete(compile);
        return (validate ??= compilerFor()(routeSchema));
      };
      pending.add(compile);
      const lazy: FastifyValidationResult = (data: unknown) => {
        const v = compile();
        const result = v(data);
        lazy.errors = v.errors;
        return result;
      };
      return lazy;
    };
  }) as unknown as BuildValidator;
  const compileAll = () => {
    const next = pending.values().next();
    if (next.done) return;
    next.value();
    setImmediate(compileAll).unref();
  };
  return { buildValidator, compileAll };
}
