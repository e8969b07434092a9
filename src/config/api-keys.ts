/** The accepted API keys: `server.apiKeys` (config, env or flags) plus `server.apiKeyFile`. */
import { readFileSync } from "node:fs";
import type { Config } from "./schema.js";
import { ConfigError } from "./load.js";

/** One key per line; blank lines and `#` comments are skipped. Errors name the file, never its content. */
export function loadApiKeys(server: Pick<Config["server"], "apiKeys" | "apiKeyFile">): string[] {
  const keys = [...server.apiKeys];
  if (server.apiKeyFile) {
    let text: string;
    try {
      text = readFileSync(server.apiKeyFile, "utf8");
    } catch (err) {
      throw new ConfigError(`cannot read server.apiKeyFile ${server.apiKeyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const fromFile = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    if (fromFile.length === 0) throw new ConfigError(`server.apiKeyFile ${server.apiKeyFile} holds no key`);
    keys.push(...fromFile);
  }
  return [...new Set(keys)];
}
