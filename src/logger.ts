/** pino JSON logs; human-readable through pino-pretty (a dev dependency) when the terminal is interactive. */
import { createRequire } from "node:module";
import pino, { type Logger } from "pino";
import type { Config } from "./config/schema.js";

function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve("pino-pretty");
    return true;
  } catch {
    return false;
  }
}

export function createLogger(cfg: Config["log"], destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: cfg.level,
    base: { service: "edgellm" },
    redact: { paths: ["req.headers.authorization", "req.headers[\"x-api-key\"]", "headers.authorization"], censor: "[redacted]" },
  };
  if (destination) return pino(options, destination);
  const pretty = cfg.pretty === "auto" ? process.stdout.isTTY && prettyAvailable() : cfg.pretty && prettyAvailable();
  if (pretty) return pino({ ...options, transport: { target: "pino-pretty", options: { translateTime: "HH:MM:ss.l" } } });
  return pino(options);
}
