/**
 * The server's HTTP errors as OpenAI error objects (`toBody`). Codes are strings, as OpenAI
 * sends them; `type` follows OpenAI's names. The engine's own errors become these in
 * `src/server/engine-errors.ts`.
 */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error"
  | "service_unavailable_error";

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    type: ErrorType,
    message: string,
    opts: { param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.headers = opts.headers ?? {};
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code = "invalid_value") =>
  new ApiError(400, "invalid_request_error", message, { param, code });

/** `param` names what holds the prompt: chat `messages`, or a completion's `prompt`. */
export const contextLengthExceeded = (contextSize: number, promptTokens: number, maxTokens: number, param: "messages" | "prompt" = "messages") =>
  new ApiError(
    400,
    "invalid_request_error",
    `This model's maximum context length is ${contextSize} tokens. However, you requested ${promptTokens + maxTokens} tokens ` +
      `(${promptTokens} in the ${param}, ${maxTokens} in the completion). Please reduce the length of the ${param} or completion.`,
    { param, code: "context_length_exceeded" },
  );

export const modelNotFound = (model: string) =>
  new ApiError(404, "not_found_error", `The model '${model}' does not exist`, { param: "model", code: "model_not_found" });

/** The client hung up before its answer: nobody reads this, and it is not a server error. */
export const clientClosed = () =>
  new ApiError(499, "invalid_request_error", "The client closed the request", { code: "client_closed_request" });

export const internalError = (message = "The server had an error while processing your request") =>
  new ApiError(500, "server_error", message, { code: "internal_error" });

/** Maps anything thrown to an ApiError without leaking internals (stack traces, native messages). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return internalError();
}
