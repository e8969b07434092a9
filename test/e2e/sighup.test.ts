/**
 * A real SIGHUP to the real CLI: the server re-reads its config file and reloads the model
 * blue-green with the new settings, and keeps serving on the same port.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scriptedModel } from "../helpers/models.js";
import { spawnCli, waitHealthy } from "../helpers/cli.js";

const SCRIPT = "Reloaded by a signal.";

describe("SIGHUP", () => {
  let dir: string;
  let modelPath: string;
  beforeAll(async () => {
    modelPath = await scriptedModel([SCRIPT]);
    dir = mkdtempSync(join(tmpdir(), "edgellm-sighup-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("re-reads the config file and applies the new model settings without a restart", async () => {
    const configFile = join(dir, "edge.yaml");
    const writeConfig = (contextSize: number) =>
      writeFileSync(configFile, `model:\n  contextSize: ${contextSize}\n  sequences: 1\n  threads: 1\n  dir: ${JSON.stringify(dir)}\n`);
    writeConfig(512);
    const cli = spawnCli(["--config", configFile, "--model", modelPath, "--alias", "m", "--port", "0", "--host", "127.0.0.1"]);
    try {
      const url = await cli.url;
      await waitHealthy(url);
      const contextLength = async () =>
        ((await (await fetch(`${url}/v1/models/m`)).json()) as { meta: { context_length: number } }).meta.context_length;
      expect(await contextLength()).toBe(512);

      writeConfig(1024);
      cli.child.kill("SIGHUP");
      const deadline = Date.now() + 120_000;
      while ((await contextLength()) !== 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await contextLength()).toBe(1024);
      expect(cli.stdout()).toContain("SIGHUP: model configuration applied");

      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
      const reply = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
      expect(reply.choices[0]!.message.content).toBe(SCRIPT);
      expect(cli.child.exitCode).toBeNull();
    } finally {
      cli.child.kill("SIGKILL");
    }
  }, 180_000);
});
