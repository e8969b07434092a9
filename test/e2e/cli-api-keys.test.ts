/**
 * API keys given the ways users try first: repeatable `--api-key` flags, `--api-key-file`, and the
 * single-key EDGELLM_API_KEY env var, on the real CLI and server.
 */
import { describe, it, expect, afterEach } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { tinyModel } from "../helpers/models.js";
import { spawnCli, waitHealthy, type CliProcess } from "../helpers/cli.js";
import { loadConfig } from "../../src/config/load.js";

const base = async () => ["--model", await tinyModel(), "--port", "0", "--host", "127.0.0.1", "--ctx-size", "256", "--parallel", "1", "--threads", "1"];
const status = async (url: string, key?: string) =>
  (await fetch(`${url}/v1/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} })).status;

describe("API keys from flags and EDGELLM_API_KEY", () => {
  let cli: CliProcess | undefined;
  afterEach(async () => {
    cli?.child.kill("SIGTERM");
    await cli?.exit;
    cli = undefined;
  });

  it("--api-key (twice) and --api-key-file each let a request in; no key or another key is a 401", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "edgellm-cli-keys-"));
    try {
      const file = path.join(dir, "keys");
      writeFileSync(file, "sk-from-file\n");
      cli = spawnCli([...(await base()), "--api-key", "sk-one", "--api-key", "sk-two,with-comma", "--api-key-file", file]);
      const url = await cli.url;
      await waitHealthy(url);
      expect(await status(url, "sk-one")).toBe(200);
      expect(await status(url, "sk-two,with-comma")).toBe(200);
      expect(await status(url, "sk-from-file")).toBe(200);
      expect(await status(url)).toBe(401);
      expect(await status(url, "sk-two")).toBe(401);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("EDGELLM_API_KEY turns authentication on with that one key", async () => {
    cli = spawnCli(await base(), { env: { EDGELLM_API_KEY: "sk-env-single" } });
    const url = await cli.url;
    await waitHealthy(url);
    expect(await status(url, "sk-env-single")).toBe(200);
    expect(await status(url)).toBe(401);
  });

  it("EDGELLM_API_KEY joins EDGELLM_SERVER_API_KEYS and keeps a comma inside the key", () => {
    const config = loadConfig({}, { EDGELLM_SERVER_API_KEYS: "a,b", EDGELLM_API_KEY: "c,d" });
    expect(config.server.apiKeys).toEqual(["a", "b", "c,d"]);
  });
});
