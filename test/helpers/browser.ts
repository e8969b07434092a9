/**
 * Headless Chromium from the system's packages (Debian: apt-get install chromium), driven by
 * playwright-core: nothing is downloaded at install. Tests skip when no browser is found.
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import type { ScriptSegment } from "../../src/models/synthetic/index.js";

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export const browserPath: string | undefined = CANDIDATES.find((p): p is string => !!p && existsSync(p));

export function launchBrowser(): Promise<Browser> {
  if (!browserPath) throw new Error("no Chromium found (set CHROMIUM_PATH or apt-get install chromium)");
  return chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** What the playground's scripted model thinks and answers: Markdown with a code block and a list. */
export const PLAYGROUND_THOUGHT = "The user wants a Python call. Show the OpenAI client with its base URL.";
/** Scripted models cannot repeat a (previous, current) token pair, which rules out quoted strings here. */
export const PLAYGROUND_ANSWER = [
  "Point any OpenAI client at **edgellm**:",
  "",
  "```python",
  "from openai import OpenAI",
  "client = OpenAI(base_url=BASE_URL)",
  "print(client.models.list())",
  "```",
  "",
  "Your data stays *offline*, on this box.",
].join("\n");
export const PLAYGROUND_SCRIPT: ScriptSegment[] = [{ token: "<think>" }, `\n${PLAYGROUND_THOUGHT}\n`, { token: "</think>" }, `\n\n${PLAYGROUND_ANSWER}`];
