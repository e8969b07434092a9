/**
 * The container's entrypoint and HEALTHCHECK script, run outside Docker exactly as the image
 * runs them: configuration from EDGELLM_* env (a profile, a bare model file name looked up in
 * the models directory), /health turning 200, and SIGTERM ending in exit 0.
 */
import { describe, it, expect } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { tinyModel } from "../helpers/models.js";
import { REPO_ROOT, spawnCli, waitHealthy } from "../helpers/cli.js";

const ENTRYPOINT = ["docker/entrypoint.sh"];
const run = promisify(execFile);

async function healthcheck(port: string): Promise<number> {
  try {
    await run("node", ["docker/healthcheck.mjs"], { cwd: REPO_ROOT, env: { ...process.env, EDGELLM_SERVER_PORT: port } });
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

describe("docker/entrypoint.sh", () => {
  it("serves a model named by file in the models dir under a profile, passes HEALTHCHECK, exits 0 on SIGTERM", async () => {
    const model = await tinyModel();
    const cli = spawnCli([], {
      env: {
        EDGELLM_PROFILE: "edge-1gb",
        EDGELLM_MODEL_DIR: path.dirname(model),
        EDGELLM_MODEL_SOURCE: path.basename(model),
        EDGELLM_MODEL_ALIAS: "m",
        EDGELLM_MODEL_CONTEXT_SIZE: "256",
        EDGELLM_SERVER_HOST: "127.0.0.1",
        EDGELLM_SERVER_PORT: "0",
      },
    }, ENTRYPOINT);
    try {
      const url = await cli.url;
      const port = new URL(url).port;
      expect(await healthcheck(port)).toBe(1);
      await waitHealthy(url);
      expect(await healthcheck(port)).toBe(0);

      const models = (await (await fetch(`${url}/v1/models`)).json()) as any;
      expect(models.data[0]).toMatchObject({ id: "m", meta: { context_length: 256 } });
      // The profile is in force where env does not override it: edge-1gb caps max_tokens at 1024.
      const capped = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 1025 }),
      });
      expect(capped.status).toBe(400);
      expect(((await capped.json()) as any).error.message).toContain("at most 1024");
    } finally {
      cli.child.kill("SIGTERM");
    }
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(cli.stderr()).toBe("");
  });

  it("an unknown profile is one line naming the choices, exit 2", async () => {
    const cli = spawnCli([], { env: { EDGELLM_PROFILE: "edge-512mb" } }, ENTRYPOINT);
    expect((await cli.exit).code).toBe(2);
    expect(cli.stderr().trim()).toMatch(/^edgellm: EDGELLM_PROFILE=edge-512mb: no such profile \(config\/edge-512mb.yaml\); profiles: .*edge-1gb.*$/);
  });
});
