/** ApiErrors as Anthropic error objects: `{type: "error", error: {type, message}}`, same HTTP status. */
import type { ApiError, ErrorType } from "../openai/errors.js";

export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "overloaded_error";

const TYPES: Record<ErrorType, AnthropicErrorType> = {
  invalid_request_error: "invalid_request_error",
  authentication_error: "authentication_error",
  not_found_error: "not_found_error",
  rate_limit_error: "rate_limit_error",
  server_error: "api_error",
  // Model loading, queue full, draining: Anthropic's word for "try again shortly".
  service_unavailable_error: "overloaded_error",
};

export interface AnthropicErrorBody {
  type: "error";
  error: { type: AnthropicErrorType; message: string };
}

export function anthropicErrorBody(err: ApiError): AnthropicErrorBody {
  const type = err.status === 413 ? "request_too_large" : TYPES[err.type];
  return { type: "error", error: { type, message: err.message } };
}
