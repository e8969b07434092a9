/**
 * The server's guards, as hooks on the root instance so they cover every route: drain (refuse
 * while shutting down), CORS (answers preflights before auth asks for a key), API keys, limits.
 * Registration order is hook order.
 */
import type { FastifyPluginAsync } from "fastify";
import type { ServerDeps } from "../deps.js";
import { loadApiKeys } from "../../config/api-keys.js";
import { installDrain } from "./drain.js";
import { installCors } from "./cors.js";
import { installAuth } from "./auth.js";
import { installLimits } from "./limits.js";
import { UI_PUBLIC_PATHS } from "../routes/ui.js";

const LOOPBACK = /^(127\.|::1$|localhost$)/;

const guards: FastifyPluginAsync<ServerDeps> = async (app, { config }) => {
  installDrain(app);
  await installCors(app, config.server.corsOrigins);
  const keys = loadApiKeys(config.server);
  if (keys.length === 0 && !LOOPBACK.test(config.server.host)) {
    app.log.warn({ host: config.server.host }, "no API key configured (server.apiKeys / server.apiKeyFile): anyone who reaches this port can use the model");
  }
  installAuth(app, keys, [...config.server.publicPaths, ...(config.server.ui ? UI_PUBLIC_PATHS : [])]);
  installLimits(app, config.limits);
};

// Not encapsulated: the hooks must apply to routes registered beside this plugin.
export const serverGuards = Object.assign(guards, { [Symbol.for("skip-override")]: true });
