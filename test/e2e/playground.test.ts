/**
 * The playground in a real headless Chromium (Debian's package, driven by playwright-core)
 * against the real server and worker on scripted models: chat with thinking, the exact answer,
 * reload, the system prompt reaching the model, stop freeing the sequence, the API-key prompt.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { scriptedModel } from "../helpers/models.js";
import { engineIdle, engineModel, startTestServer, type TestServer } from "../helpers/server.js";
import { waitFor } from "../helpers/stream.js";
import { browserPath, launchBrowser, PLAYGROUND_ANSWER, PLAYGROUND_SCRIPT, PLAYGROUND_THOUGHT } from "../helpers/browser.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const UI_TIMEOUT = 60_000;
const TITLE = "How do I call this server from Python?";

const suite = browserPath ? "playground in headless Chromium" : "playground in headless Chromium (SKIPPED: no Chromium found; apt-get install chromium or set CHROMIUM_PATH)";

async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(UI_TIMEOUT);
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  return { page, errors };
}

// Page-side code is given as strings: the tests are type-checked without the DOM library.

/** Records whether the live thinking indicator ever showed, however briefly. */
const watchThinking = (page: Page) =>
  page.evaluate(`
    window.sawThinking = false;
    new MutationObserver(() => {
      if (document.querySelector(".msg.assistant.is-thinking .thinking[open]")) window.sawThinking = true;
    }).observe(document.getElementById("messages"), { subtree: true, attributes: true, childList: true });
  `);

async function send(page: Page, text: string): Promise<Json> {
  const request = page.waitForRequest((r) => r.url().endsWith("/v1/chat/completions"));
  await page.fill("#prompt", text);
  await page.press("#prompt", "Enter");
  return JSON.parse((await request).postData()!) as Json;
}

describe.skipIf(!browserPath)(suite, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(() => browser?.close());

  describe("chatting with a thinking model", () => {
    let server: TestServer;
    let dataDir: string;
    const api = async (path: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      return (await res.json()) as Json;
    };
    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "edgellm-ui-"));
      server = await startTestServer(await scriptedModel(PLAYGROUND_SCRIPT), { "server.dataDir": dataDir });
    });
    afterAll(async () => {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("streams the thought into the thinking panel and renders the exact answer, reloads, takes the system prompt, exports, renames and deletes", async () => {
      const { page, errors } = await openPage(browser, `${server.url}/`);
      await page.waitForSelector("body.ready");
      expect(await page.isVisible("#empty-state")).toBe(true);
      expect(await page.getAttribute("html", "data-theme")).toBe("dark");
      // Defaults come from GET /props: Qwen3's thinking-mode sampling.
      expect(await page.getAttribute("#temperature", "placeholder")).toBe("0.6");
      expect(await page.getAttribute("#top-k", "placeholder")).toBe("20");

      await watchThinking(page);
      const first = await send(page, TITLE);
      expect(first).toMatchObject({ model: server.modelId, stream: true, enable_thinking: true, messages: [{ role: "user", content: TITLE }] });
      // The stats show when the stream ends; the item id once the reply is stored on the server.
      await page.waitForSelector(".msg.assistant[data-item-id] .stats:not(:empty)");
      expect(await page.evaluate("window.sawThinking")).toBe(true);

      const reply = page.locator(".msg.assistant").first();
      expect(await reply.locator(".thinking").isVisible()).toBe(true);
      expect(await reply.locator(".thinking-text").textContent()).toBe(PLAYGROUND_THOUGHT);
      const thoughtLabel = await reply.locator(".thinking .label").textContent();
      expect(thoughtLabel).toMatch(/^Thought for (\d+\.\d s|a moment)$/);
      expect(await reply.locator(".answer strong").textContent()).toBe("edgellm");
      expect(await reply.locator(".answer em").textContent()).toBe("offline");
      expect(await reply.locator(".answer pre code").textContent()).toBe(PLAYGROUND_ANSWER.split("```python\n")[1]!.split("```")[0]!.trimEnd());
      expect(await reply.locator(".answer .code-head span").textContent()).toBe("python");
      expect(await reply.locator(".answer pre code .hljs-keyword").count()).toBeGreaterThan(0);

      // Stored on the server exactly as the model said it, with the numbers shown under it.
      const convId = new URL(page.url()).hash.slice(1);
      expect(convId).toMatch(/^conv_/);
      const items = (await api(`/v1/conversations/${convId}/items?order=asc`)).data as Json[];
      expect(items.map((i) => i.role)).toEqual(["user", "assistant"]);
      const answer = items[1]!;
      expect(answer).toMatchObject({ status: "completed", model: server.modelId, reasoning_content: PLAYGROUND_THOUGHT, content: [{ type: "output_text", text: PLAYGROUND_ANSWER }] });
      expect(answer.usage.reasoning_tokens).toBeGreaterThan(0);
      expect(answer.metrics.ttft_ms).toBeGreaterThan(0);
      expect(answer.metrics.tokens_per_second).toBeGreaterThan(0);
      const stats = await reply.locator(".stats").textContent();
      expect(stats).toContain(`${answer.usage.completion_tokens} tokens · ${answer.usage.reasoning_tokens} thinking · ${answer.usage.prompt_tokens} prompt`);
      expect(stats).toMatch(/TTFT \d+ ms · \d+\.\d tok\/s$/);
      expect(await page.locator("#conversations li.active .conversation-title").textContent()).toBe(TITLE);

      // A reload reopens the conversation from the server.
      await page.reload();
      await page.waitForSelector(".msg.assistant .stats:not(:empty)");
      expect(await page.locator(".msg.user .bubble").textContent()).toBe(TITLE);
      expect(await page.locator(".msg.assistant .answer strong").textContent()).toBe("edgellm");
      expect(await page.locator(".msg.assistant .thinking-text").textContent()).toBe(PLAYGROUND_THOUGHT);
      // The thought's duration is stored with the reply, so the reopened panel says the same.
      expect(await page.locator(".msg.assistant .thinking .label").textContent()).toBe(thoughtLabel);
      expect(await page.locator("#chat-title").textContent()).toBe(TITLE);

      // A system prompt set in the panel goes into the next request and so into the model's prompt.
      const SYSTEM = "You are a terse assistant on an edge gateway.";
      await page.click("#settings-toggle");
      await page.fill("#system-prompt", SYSTEM);
      await page.fill("#temperature", "0.2");
      await page.click("#settings-close");
      const second = await send(page, "And from JavaScript?");
      expect(second.messages).toEqual([
        { role: "system", content: SYSTEM },
        { role: "user", content: TITLE },
        { role: "assistant", content: PLAYGROUND_ANSWER },
        { role: "user", content: "And from JavaScript?" },
      ]);
      expect(second.temperature).toBe(0.2);
      await page.waitForFunction(`document.querySelectorAll(".msg.assistant[data-item-id]").length === 2`);
      const stored = (await api(`/v1/conversations/${convId}/items?order=asc`)).data as Json[];
      const promptTokens = async (messages: unknown) => ((await api("/tokenize", { content: (await api("/apply-template", { messages })).prompt })).tokens as number[]).length;
      expect(stored[3]!.usage.prompt_tokens).toBe(await promptTokens(second.messages));
      expect(stored[3]!.usage.prompt_tokens).toBeGreaterThan(await promptTokens(second.messages.slice(1)));

      // Settings and the theme live in the browser across reloads.
      await page.click("#theme-toggle");
      await page.reload();
      await page.waitForSelector("body.ready");
      expect(await page.inputValue("#system-prompt")).toBe(SYSTEM);
      expect(await page.getAttribute("html", "data-theme")).toBe("light");

      // Export, rename and delete from the sidebar.
      const li = page.locator("#conversations li.active");
      const download = page.waitForEvent("download");
      await li.locator("button.export").click();
      const exported = JSON.parse(readFileSync((await (await download).path())!, "utf8")) as Json;
      expect(exported).toMatchObject({ id: convId, object: "conversation", metadata: { title: TITLE } });
      expect(exported.items).toEqual(stored);
      await li.locator("button.rename").click();
      await page.fill(".rename-input", "Client snippets");
      await page.press(".rename-input", "Enter");
      await page.waitForFunction(`document.querySelector("#conversations li.active .conversation-title")?.textContent === "Client snippets"`);
      expect((await api(`/v1/conversations/${convId}`)).metadata.title).toBe("Client snippets");
      page.once("dialog", (d) => void d.accept());
      await page.locator("#conversations li.active button.delete").click();
      await page.waitForSelector("#conversations-empty", { state: "visible" });
      expect((await api(`/v1/conversations/${convId}`)).error.code).toBe("conversation_not_found");
      expect(errors).toEqual([]);
      await page.close();
    });

    it("sanitizes model output: no script, no event handlers, no javascript: links", async () => {
      const { page } = await openPage(browser, `${server.url}/`);
      const html = (await page.evaluate(`import("/ui/markdown.js").then(({ renderMarkdown }) =>
        renderMarkdown('<img src=x onerror="alert(1)"> <script>alert(2)</script> [x](javascript:alert(3)) **ok**'))`)) as string;
      expect(html).toContain("<strong>ok</strong>");
      expect(html).not.toMatch(/onerror|<script|javascript:/);
      await page.close();
    });
  });

  describe("stopping a generation, with API keys on", () => {
    let server: TestServer;
    let dataDir: string;
    beforeAll(async () => {
      dataDir = mkdtempSync(join(tmpdir(), "edgellm-ui-"));
      // Thinks forever: after the last script token it goes back to the thought's first token.
      const model = await scriptedModel([{ token: "<think>" }, "\nStill weighing every option here. "], { loop: 1 });
      // /v1/engine stays public so the test can watch the slots without the page's key.
      server = await startTestServer(model, { "server.dataDir": dataDir, "server.apiKeys": "pg-key", "server.publicPaths": "/health,/v1/engine" });
    });
    afterAll(async () => {
      await server?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("asks for the key once, keeps it, and Stop ends the stream and frees the sequence", async () => {
      const { page, errors } = await openPage(browser, `${server.url}/`);
      await page.waitForSelector("#key-dialog[open]");
      await page.fill("#key-input", "wrong");
      await page.press("#key-input", "Enter");
      await page.waitForSelector("#key-dialog[open] #key-error:not([hidden])");
      await page.fill("#key-input", "pg-key");
      await page.press("#key-input", "Enter");
      await page.waitForSelector("body.ready");
      expect(await page.evaluate(`localStorage.getItem("edgellm.apiKey")`)).toBe("pg-key");

      await send(page, "Think hard");
      await page.waitForSelector(".msg.assistant.is-thinking .thinking[open]");
      await page.waitForSelector("#stop", { state: "visible" });
      expect(await page.locator(".msg.assistant .thinking .label").textContent()).toMatch(/^Thinking… \d+\.\d s$/);
      await waitFor(() => engineModel(server), (m) => m.slots.some((s) => s.phase === "decode"), UI_TIMEOUT);
      await page.click("#stop");
      await engineIdle(server);
      expect((await engineModel(server)).inflight).toBe(0);
      await page.waitForSelector("#send", { state: "visible" });
      await page.waitForSelector(".msg.assistant[data-item-id] .stats:not(:empty)");
      expect(await page.locator(".msg.assistant .stats").textContent()).toContain("stopped");

      const headers = { authorization: "Bearer pg-key" };
      const convId = new URL(page.url()).hash.slice(1);
      const items = ((await (await fetch(`${server.url}/v1/conversations/${convId}/items?order=asc`, { headers })).json()) as Json).data as Json[];
      expect(items[1]).toMatchObject({ role: "assistant", status: "incomplete" });
      expect(items[1]!.reasoning_content).toMatch(/^Still weighing every option here\./);

      // The key is kept: a reload asks for nothing.
      await page.reload();
      await page.waitForSelector("body.ready");
      expect(await page.locator("#key-dialog[open]").count()).toBe(0);
      expect(await page.locator(".msg.assistant .stats").textContent()).toContain("stopped");
      expect(errors.filter((e) => !e.includes("401"))).toEqual([]);
      await page.close();
    });
  });
});
