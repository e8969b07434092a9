/**
 * Screenshots of the playground for the docs, from a real run: the real server and worker on
 * the scripted thinking model the browser test uses, driven in headless Chromium.
 *   npm run screenshots   → docs/playground-dark.png, docs/playground-light.png, docs/playground-phone.png
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { scriptedModel } from "../test/helpers/models.js";
import { startTestServer } from "../test/helpers/server.js";
import { launchBrowser, PLAYGROUND_SCRIPT } from "../test/helpers/browser.js";
import { handleHelp } from "./lib/tool.js";

handleHelp(import.meta.url);

const DOCS = fileURLToPath(new URL("../docs/", import.meta.url));

async function ask(page: Page, text: string, replies: number): Promise<void> {
  await page.fill("#prompt", text);
  await page.press("#prompt", "Enter");
  await page.waitForFunction(`document.querySelectorAll(".msg.assistant .stats:not(:empty)").length === ${replies}`);
}

const dataDir = mkdtempSync(join(tmpdir(), "edgellm-shots-"));
const server = await startTestServer(await scriptedModel(PLAYGROUND_SCRIPT), { "server.dataDir": dataDir });
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  page.setDefaultTimeout(60_000);
  await page.goto(`${server.url}/`);
  await page.waitForSelector("body.ready");
  for (const title of ["Summarize today's sensor log", "Explain paged KV caches"]) {
    await ask(page, title, 1);
    await page.click("#new-chat");
    await page.waitForSelector("#empty-state", { state: "visible" });
  }
  await ask(page, "How do I call this server from Python?", 1);
  await page.click(".msg.assistant .thinking summary");
  await page.fill("#prompt", "And with LangChain?");
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(DOCS, "playground-dark.png") });

  await page.click("#theme-toggle");
  await page.click("#settings-toggle");
  await page.fill("#system-prompt", "You are a concise assistant running on an edge gateway.");
  await page.screenshot({ path: join(DOCS, "playground-light.png") });

  await page.click("#theme-toggle");
  await page.click("#settings-close");
  await page.setViewportSize({ width: 390, height: 780 });
  await page.reload();
  await page.waitForSelector(".msg.assistant .stats:not(:empty)");
  // Let the messages' fade-in finish.
  await page.waitForTimeout(500);
  await page.screenshot({ path: join(DOCS, "playground-phone.png") });
} finally {
  await browser.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
