/**
 * Graceful shutdown, HTTP side: counts the requests in flight and, once draining, answers every
 * new request (/health included) with 503 `shutting_down`, so probes and load balancers take
 * this instance out while the requests it already accepted finish.
 */
import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import { ApiError } from "../../openai/errors.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Stops accepting requests; resolves true once none is in flight, false if `graceMs` ran out first. */
    drain(graceMs: number): Promise<boolean>;
  }
}

const shuttingDown = () =>
  new ApiError(503, "service_unavailable_error", "The server is shutting down", {
    code: "shutting_down",
    headers: { "retry-after": "5", connection: "close" },
  });

const drain: FastifyPluginAsync = async (app) => {
  let draining = false;
  let inflight = 0;
  let idle: (() => void) | null = null;

  app.addHook("onRequest", async (req, reply) => {
    if (draining) throw shuttingDown();
    inflight++;
    // "close" fires once whatever happens: response sent, stream ended, or client gone.
    reply.raw.once("close", () => {
      if (--inflight === 0) idle?.();
    });
  });

  app.decorate("drain", (graceMs: number) => {
    draining = true;
    if (inflight === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), graceMs);
      idle = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  });
};

export const drainGuard = fp(drain, { name: "edgellm-drain", fastify: "5.x" });
