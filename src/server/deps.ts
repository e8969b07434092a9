/**
 * What the routes and guards are given. Kept apart from app.ts so the plugins that app.ts
 * registers need not import it back.
 */
import type { Logger } from "pino";
import type { Config } from "../config/schema.js";
import type { ModelRegistry } from "../router/registry.js";
import type { Metrics } from "../metrics/definitions.js";
import type { StoreDb } from "../store/db.js";

export interface ServerDeps {
  config: Config;
  logger: Logger;
  registry: ModelRegistry;
  metrics: Metrics;
}

/** For the routes that keep data: the server's one embedded store. */
export interface StoreDeps extends ServerDeps {
  db: StoreDb;
}
