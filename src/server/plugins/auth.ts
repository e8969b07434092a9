/**
 * API-key authentication: `Authorization: Bearer <key>` (what the OpenAI SDKs send) or
 * `X-Api-Key: <key>`. Keys are compared as SHA-256 digests with timingSafeEqual, so neither
 * the content nor the length of a key leaks through response timing. CORS preflights, routes
 * flagged `config.public` and the routes listed in `server.publicPaths` (health, metrics by
 * default) pass without a key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import "./route-flags.js";
import { ApiError } from "../../openai/errors.js";

const digest = (key: string) => createHash("sha256").update(key, "utf8").digest();

const unauthorized = (message: string) =>
  new ApiError(401, "authentication_error", message, { code: "invalid_api_key", headers: { "www-authenticate": 'Bearer realm="edgellm"' } });

/** The key a request presents, from either header; undefined when it presents none. */
function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const match = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (match) return match[1]!.trim();
  }
  const header = req.headers["x-api-key"];
  return typeof header === "string" && header.trim() !== "" ? header.trim() : undefined;
}

export interface AuthOptions {
  /** Accepted keys; none turns the guard off. */
  keys: readonly string[];
  /** Route URLs the operator serves without a key (`server.publicPaths`). */
  publicPaths: readonly string[];
}

const auth: FastifyPluginAsync<AuthOptions> = async (app, { keys, publicPaths }) => {
  if (keys.length === 0) return;
  const digests = keys.map(digest);
  const isPublic = new Set(publicPaths);
  const accepted = (key: string) => {
    const presented = digest(key);
    // Every key is compared, so the time taken does not tell which one (if any) matched.
    return digests.reduce((ok, d) => timingSafeEqual(d, presented) || ok, false);
  };
  app.addHook("onRequest", async (req) => {
    if (req.method === "OPTIONS") return;
    if (req.routeOptions.config.public === true) return;
    // The matched route, not the raw URL: an encoded or odd path cannot pass for a public one.
    const route = req.routeOptions.url;
    if (route !== undefined && isPublic.has(route)) return;
    const key = presentedKey(req);
    if (key === undefined) {
      throw unauthorized("Missing API key: send it as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'");
    }
    if (!accepted(key)) throw unauthorized("Incorrect API key provided");
  });
};

export const authGuard = fp(auth, { name: "edgellm-auth", fastify: "5.x" });
