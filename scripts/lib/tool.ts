/** What every tool entry needs: the repository root, a help text, a log line, an output folder. */
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/**
 * `--help` / `-h`: prints the entry file's leading doc comment (its usage and options, written
 * once, for readers of the source and of the terminal alike) and exits 0. Call it before parseArgs.
 */
export function handleHelp(entryUrl: string): void {
  if (!process.argv.slice(2).some((arg) => arg === "--help" || arg === "-h")) return;
  const source = readFileSync(fileURLToPath(entryUrl), "utf8");
  const comment = /\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? "";
  process.stdout.write(`${comment.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n").trim()}\n`);
  process.exit(0);
}

/** Log lines on stderr as `[tag HH:MM:SS] message`. */
export function logger(tag: string): (msg: string) => void {
  return (msg) => process.stderr.write(`[${tag} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** `given`, or a fresh /tmp/edgellm-<tag>-<time> folder; created. */
export function outputDir(tag: string, given: string | undefined): string {
  const dir = given ?? path.join(os.tmpdir(), `edgellm-${tag}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** `a` relative to the repository root when it lies inside it, for command lines in reports. */
export const relativeToRoot = (a: string) => (a.startsWith(`${ROOT}/`) ? path.relative(ROOT, a) : a);
