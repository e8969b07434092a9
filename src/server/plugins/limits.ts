/**
 * Request limits (`limits.*`) the JSON schemas do not express, checked on any body that has
 * the field, so every generation route gets them. Each violation is a 400 naming the
 * parameter; too many concurrent requests from one client on routes flagged `config.modelWork`
 * (generations, embeddings) is a 429. The prompt-token limit needs the tokenizer and is checked
 * in the engine; the deadline is the router's.
 */
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import "./route-flags.js";
import type { Config } from "../../config/schema.js";
import { ApiError, invalidRequest } from "../../openai/errors.js";

type Limits = Config["limits"];

const tooLarge = (param: string, message: string) => invalidRequest(message, param, "limit_exceeded");

/** Nesting depth of a parsed JSON value, walked without recursion so a hostile body cannot overflow the stack. */
function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > max) return true;
    for (const child of Object.values(v)) if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
  }
  return false;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Throws the first limit the (schema-valid) body breaks; routes that translate a body into a chat request check that one too. */
export function checkBodyLimits(body: Record<string, unknown>, limits: Limits): void {
  const { messages, n, tools } = body;
  // Anthropic's names for the same things: stop_sequences, tools[i].input_schema.
  const stop = body["stop"] ?? body["stop_sequences"];
  if (Array.isArray(messages) && messages.length > limits.maxMessages) {
    throw tooLarge("messages", `Too many messages: ${messages.length}; this server accepts at most ${limits.maxMessages} (limits.maxMessages)`);
  }
  for (const param of ["max_tokens", "max_completion_tokens"]) {
    const value = body[param];
    if (typeof value === "number" && value > limits.maxCompletionTokens) {
      throw tooLarge(param, `'${param}' is ${value}; this server generates at most ${limits.maxCompletionTokens} tokens per request (limits.maxCompletionTokens)`);
    }
  }
  if (typeof n === "number" && n > limits.maxN) {
    throw tooLarge("n", `'n' is ${n}; this server generates at most ${limits.maxN} choices per request (limits.maxN)`);
  }
  const stops = typeof stop === "string" ? [stop] : Array.isArray(stop) ? stop : [];
  if (stops.length > limits.maxStopStrings) {
    throw tooLarge("stop", `Too many stop strings: ${stops.length}; at most ${limits.maxStopStrings} (limits.maxStopStrings)`);
  }
  stops.forEach((s, i) => {
    if (typeof s === "string" && s.length > limits.maxStopLength) {
      throw tooLarge(typeof stop === "string" ? "stop" : `stop[${i}]`, `Stop string of ${s.length} characters; at most ${limits.maxStopLength} (limits.maxStopLength)`);
    }
  });
  if (Array.isArray(tools)) {
    if (tools.length > limits.maxTools) throw tooLarge("tools", `Too many tools: ${tools.length}; at most ${limits.maxTools} (limits.maxTools)`);
    tools.forEach((tool, i) => {
      const parameters = !isObject(tool) ? undefined : isObject(tool["function"]) ? tool["function"]["parameters"] : tool["input_schema"];
      if (parameters === undefined) return;
      const bytes = Buffer.byteLength(JSON.stringify(parameters));
      if (bytes > limits.maxToolSchemaBytes) {
        throw tooLarge(`tools[${i}].function.parameters`, `Tool schema of ${bytes} bytes; at most ${limits.maxToolSchemaBytes} (limits.maxToolSchemaBytes)`);
      }
    });
  }
}

const requestLimits: FastifyPluginAsync<Limits> = async (app, limits) => {
  // Before schema validation: nothing later (validation, serialization, templates) meets a deep document.
  app.addHook("preValidation", async (req) => {
    if (jsonDepthExceeds(req.body, limits.maxJsonDepth)) {
      throw tooLarge("body", `JSON nested deeper than ${limits.maxJsonDepth} levels (limits.maxJsonDepth)`);
    }
  });
  app.addHook("preHandler", async (req) => {
    if (isObject(req.body)) checkBodyLimits(req.body, limits);
  });

  const max = limits.maxConcurrentRequestsPerClient;
  if (max === 0) return;
  const perClient = new Map<string, number>();
  app.addHook("onRequest", async (req, reply) => {
    if (req.routeOptions.config.modelWork !== true) return;
    const held = perClient.get(req.ip) ?? 0;
    if (held >= max) {
      throw new ApiError(429, "rate_limit_error", `This client already has ${held} generation or embedding requests in flight; at most ${max} (limits.maxConcurrentRequestsPerClient)`, {
        code: "too_many_concurrent_requests",
        headers: { "retry-after": "1" },
      });
    }
    perClient.set(req.ip, held + 1);
    reply.raw.once("close", () => {
      const left = (perClient.get(req.ip) ?? 1) - 1;
      if (left > 0) perClient.set(req.ip, left);
      else perClient.delete(req.ip);
    });
  });
};

export const limitsGuard = fp(requestLimits, { name: "edgellm-limits", fastify: "5.x" });
