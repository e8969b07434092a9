import { dirname, join, resolve } from "node:path";
import type { Config } from "./schema.js";

/** Where the server keeps its files: `server.dataDir`, or `data/` beside `model.dir`. */
export function dataDir(config: Pick<Config, "server" | "model">): string {
  return config.server.dataDir || join(dirname(resolve(config.model.dir)), "data");
}
