/**
 * What a route declares to the guards through its `config`, so a guard decides from the matched
 * route's own declaration rather than from its URL. Requests that match no route (404s) carry
 * no flags: they need a key like any other request and are not counted as model work.
 */
declare module "fastify" {
  interface FastifyContextConfig {
    /** Served without an API key, whatever `server.publicPaths` says. */
    public?: boolean;
    /** Holds model work (a generation or embedding): bounded by `limits.maxConcurrentRequestsPerClient`. */
    modelWork?: boolean;
  }
}

export {};
