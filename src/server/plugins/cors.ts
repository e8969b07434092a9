/**
 * CORS for browser clients, off unless `server.corsOrigins` lists origins. The allowed request
 * headers are listed, not reflected: what the OpenAI and Anthropic SDKs send (auth, project and
 * version headers and the `x-stainless-*` telemetry headers that make a browser preflight fail
 * when missing).
 */
import cors from "@fastify/cors";
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";

const CORS_ALLOWED_HEADERS = [
  "authorization",
  "content-type",
  "x-api-key",
  "x-request-id",
  "openai-organization",
  "openai-project",
  "openai-beta",
  "anthropic-version",
  "anthropic-beta",
  "anthropic-dangerous-direct-browser-access",
  "idempotency-key",
  "x-stainless-arch",
  "x-stainless-custom-poll-interval",
  "x-stainless-helper-method",
  "x-stainless-lang",
  "x-stainless-os",
  "x-stainless-package-version",
  "x-stainless-poll-helper",
  "x-stainless-retry-count",
  "x-stainless-runtime",
  "x-stainless-runtime-version",
  "x-stainless-timeout",
];

export interface CorsOptions {
  /** Allowed origins (`server.corsOrigins`); none turns CORS off, `*` allows any. */
  origins: readonly string[];
}

const corsGuard: FastifyPluginAsync<CorsOptions> = async (app, { origins }) => {
  if (origins.length === 0) return;
  await app.register(cors, {
    origin: origins.includes("*") ? "*" : [...origins],
    methods: ["GET", "POST", "DELETE", "OPTIONS"],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: ["x-request-id", "retry-after"],
    maxAge: 600,
  });
};

export const corsPolicy = fp(corsGuard, { name: "edgellm-cors", fastify: "5.x" });
