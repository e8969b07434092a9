/**
 * Fastify app factory. It knows nothing of node-llama-cpp: models are reached through the
 * ModelRegistry. Tests drive the returned app with inject() or a real port.
 */
import Fastify, { LogController, type FastifyInstance } from "fastify";
import { fastifySSE } from "@fastify/sse";
import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { join } from "node:path";
import { ApiError, invalidRequest } from "../openai/errors.js";
import { errorHandler } from "./error-handler.js";
import { validationToApiError } from "./validation.js";
import { lazySerializers, lazyValidators } from "./lazy-validators.js";
import { dataDir } from "../config/data-dir.js";
import { chatRoutes } from "./routes/chat.js";
import { completionRoutes } from "./routes/completions.js";
import { modelRoutes } from "./routes/models.js";
import { healthRoutes } from "./routes/health.js";
import { serverGuards } from "./plugins/index.js";
import { engineRoutes } from "./routes/engine.js";
import { metricsRoutes } from "./routes/metrics.js";
import { tokenizeRoutes } from "./routes/tokenize.js";
import { responsesRoutes } from "./routes/responses.js";
import { messagesRoutes } from "./routes/messages.js";
import { conversationRoutes } from "./routes/conversations.js";
import { propsRoutes } from "./routes/props.js";
import { uiRoutes } from "./routes/ui.js";
import { embeddingRoutes } from "./routes/embeddings.js";
import type { RequestSummary } from "../metrics/request-metrics.js";
import { StoreDb, storeFile } from "../store/db.js";
import type { ServerDeps } from "./deps.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Filled by routes that generate; logged as the request's one summary line. */
    summary: RequestSummary | null;
  }
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const validators = lazyValidators({ cacheDir: join(dataDir(deps.config), "validators") });
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.config.server.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.:-]{1,128}$/.test(given) ? given : `req-${randomUUID()}`;
    },
    // One summary line per request is ours to write; Fastify's own per-request lines are off.
    logController: new LogController({ requestIdLogLabel: "requestId", disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, verbose: true } },
    schemaController: { compilersFactory: { buildValidator: validators.buildValidator, buildSerializer: lazySerializers() } },
    schemaErrorFormatter: (errors) => validationToApiError(errors),
    clientErrorHandler,
  }) as unknown as FastifyInstance;
  // While the model loads: requests sent once it is ready find their validators compiled.
  app.addHook("onListen", async () => validators.compileAll());

  // Like llama-server, read the body as JSON whatever the Content-Type says: `curl -d` without
  // `-H content-type` sends form encoding, and rejecting that only trips people up.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string", bodyLimit: deps.config.server.bodyLimitBytes }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(invalidRequest("Request body is not valid JSON", null, "invalid_json"), undefined);
    }
  });

  app.decorateRequest("summary", null);
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  app.addHook("onResponse", async (req, reply) => {
    if (req.summary) req.log.info({ ...req.summary, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, "request completed");
  });

  await app.register(fastifySSE, {
    heartbeatInterval: deps.config.server.sseHeartbeatMs,
    serializer: (data: unknown) => (typeof data === "string" ? data : JSON.stringify(data)),
  });

  app.setErrorHandler(errorHandler(deps.metrics));

  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, "not_found_error", `Unknown endpoint: ${req.method} ${req.url.split("?")[0]}`, { code: "unknown_url" });
    reply.code(404).send(e.toBody());
  });

  const db = new StoreDb(storeFile(deps.config));
  app.addHook("onClose", async () => db.close());

  await app.register(serverGuards, deps);
  await app.register(healthRoutes, deps);
  await app.register(modelRoutes, deps);
  await app.register(chatRoutes, deps);
  await app.register(completionRoutes, deps);
  await app.register(engineRoutes, deps);
  await app.register(metricsRoutes, deps);
  await app.register(tokenizeRoutes, deps);
  await app.register(responsesRoutes, { ...deps, db });
  await app.register(messagesRoutes, deps);
  await app.register(propsRoutes, deps);
  await app.register(conversationRoutes, { ...deps, db });
  if (deps.config.server.ui) await app.register(uiRoutes, deps);
  await app.register(embeddingRoutes, deps);
  return app;
}

/**
 * Errors Node's HTTP parser raises before a request exists (headers over 16 KiB, malformed
 * request lines, header timeouts) answered with an OpenAI error object like every other error.
 */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, message, code] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [431, "The request headers are larger than the server accepts (16 KiB)", "headers_too_large"]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "The request was not received in time", "request_timeout"]
        : [400, "The request is not valid HTTP", "bad_http_request"];
  const body = JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code } });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
