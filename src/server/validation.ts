/** Maps Ajv schema errors onto one OpenAI error that names the offending parameter. */
import type { FastifySchemaValidationError } from "fastify/types/schema.js";
import { invalidRequest, type ApiError } from "../openai/errors.js";

/** "/messages/0/content" + missing "role" → "messages[0].role" */
export function paramPath(instancePath: string, missing?: string): string {
  const parts = instancePath.split("/").filter(Boolean);
  if (missing) parts.push(missing);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}

export function validationToApiError(errors: FastifySchemaValidationError[]): ApiError {
  // With unions Ajv reports each failed branch before the anyOf summary; the summary names the field.
  const err = errors.find((e) => e.keyword === "anyOf") ?? errors[0]!;
  const missing = err.keyword === "required" ? String((err.params as { missingProperty?: string }).missingProperty) : undefined;
  const param = paramPath(err.instancePath, missing) || "body";
  if (missing) return invalidRequest(`Missing required parameter: '${param}'`, param, "missing_required_parameter");
  if (err.keyword === "additionalProperties") {
    const unknown = paramPath(err.instancePath, String((err.params as { additionalProperty?: string }).additionalProperty));
    return invalidRequest(`Unrecognized request argument supplied: '${unknown}'`, unknown, "unknown_parameter");
  }
  const description = (err as { parentSchema?: { description?: string } }).parentSchema?.description;
  const expected = description ? `expected ${description}` : err.message ?? "invalid";
  // A value of the right type that breaks a bound (a number too large, a string too long) is a
  // bad value; a value no branch accepts by type is a bad type.
  const sameField = errors.filter((e) => e.instancePath === err.instancePath && e.keyword !== "anyOf");
  const wrongType = sameField.length === 0 ? err.keyword === "type" : sameField.every((e) => e.keyword === "type");
  return invalidRequest(`Invalid value for '${param}': ${expected}`, param, wrongType ? "invalid_type" : "invalid_value");
}
