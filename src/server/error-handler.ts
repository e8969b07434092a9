/**
 * The one error handler: anything thrown while serving a request (the engine's and the router's
 * EngineErrors included, through `httpError`) becomes an ApiError, is counted
 * and logged, and is answered in the wire format of the API the route belongs to (OpenAI by
 * default; routes of another API install the same handler with their own body).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Metrics } from "../metrics/definitions.js";
import { ApiError, invalidRequest, toApiError } from "../openai/errors.js";
import { EngineError } from "../engine/errors.js";
import { httpError } from "./engine-errors.js";

export function errorHandler(metrics: Metrics, toBody: (err: ApiError) => unknown = (err) => err.toBody()) {
  return (err: FastifyError | ApiError | EngineError, req: FastifyRequest, reply: FastifyReply) => {
    const apiErr = mapError(err);
    metrics.requestsFailed.inc({ code: apiErr.code ?? String(apiErr.status) });
    if (apiErr.status >= 500 && apiErr.status !== 503) req.log.error({ err }, "request failed");
    else if (apiErr.status === 503) req.log.warn({ code: apiErr.code }, apiErr.message);
    else req.log.debug({ code: apiErr.code, message: apiErr.message }, "request rejected");
    reply.code(apiErr.status).headers(apiErr.headers).send(toBody(apiErr));
  };
}

/** Engine errors and Fastify's own errors (body too large, bad JSON, wrong content type) become ApiErrors. */
function mapError(err: FastifyError | ApiError | EngineError): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineError) return httpError(err.info);
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, "invalid_request_error", "Request body is too large", { code: "request_too_large" });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return invalidRequest("Request body is empty; expected a JSON object", null, "invalid_json");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalidRequest("Request body is not valid JSON", null, "invalid_json");
  }
  if (err.statusCode === 400 && (err.name === "SyntaxError" || err.message.includes("JSON"))) {
    return invalidRequest("Request body is not valid JSON", null, "invalid_json");
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, "invalid_request_error", err.message, { code: "invalid_request" });
  }
  return toApiError(err);
}
