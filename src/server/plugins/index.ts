/**
 * The server's guards, each a `fastify-plugin` plugin so its hooks cover the routes registered
 * beside it: drain (refuse while shutting down), CORS (answers preflights before auth asks for a
 * key), API keys, limits. Registration order is hook order. Routes declare what applies to them
 * through their `config` flags (`route-flags.ts`).
 */
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { ServerDeps } from "../deps.js";
import { loadApiKeys } from "../../config/api-keys.js";
import { drainGuard } from "./drain.js";
import { corsPolicy } from "./cors.js";
import { authGuard } from "./auth.js";
import { limitsGuard } from "./limits.js";

const LOOPBACK = /^(127\.|::1$|localhost$)/;

const guards: FastifyPluginAsync<ServerDeps> = async (app, { config }) => {
  await app.register(drainGuard);
  await app.register(corsPolicy, { origins: config.server.corsOrigins });
  const keys = loadApiKeys(config.server);
  if (keys.length === 0 && !LOOPBACK.test(config.server.host)) {
    app.log.warn({ host: config.server.host }, "no API key configured (server.apiKeys / server.apiKeyFile): anyone who reaches this port can use the model");
  }
  await app.register(authGuard, { keys, publicPaths: config.server.publicPaths });
  await app.register(limitsGuard, config.limits);
};

export const serverGuards = fp(guards, { name: "edgellm-guards", fastify: "5.x" });
