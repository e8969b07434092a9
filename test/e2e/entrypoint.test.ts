/**
 * The container's entrypoint and HEALTHCHECK script, run outside Docker exactly as the image
 * runs them: configuration from EDGELLM_* env (a profile, a bare model file name looked up in
 * the models directory), /health turning 200, and SIGTERM ending in exit 0. The server runs
 * compiled JavaScript as `npm start` does: from a source checkout, and from a tree laid out as
 * the image's /app (dist/, no src/).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import path from "node:path";
import { tinyModel } from "../helpers/models.js";
import { processTree, REPO_ROOT, spawnCli, waitHealthy } from "../helpers/cli.js";

const ENTRYPOINT = ["docker/entrypoint.sh"];
const run = promisify(execFile);

// What the Dockerfile's builder stage does; the test that follows then finds dist/ up to date,
// so the entrypoint's start.mjs writes nothing to stderr.
beforeAll(async () => {
  await run("node", ["scripts/build-dist.mjs"], { cwd: REPO_ROOT });
});

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

      const tree = processTree(cli.child.pid!);
      expect(tree[0]!.line).toMatch(/^node --enable-source-maps scripts\/start\.mjs/);
      expect(tree.find((p) => p.line.includes("worker/main"))?.line).toContain(path.join(REPO_ROOT, "dist/worker/main.js"));
      expect(tree.filter((p) => p.line.includes("tsx"))).toEqual([]);
    } finally {
      cli.child.kill("SIGTERM");
    }
    expect(await cli.exit).toEqual({ code: 0, signal: null });
    expect(cli.stderr()).toBe("");
  });

  describe("in the image's layout: dist/ and no src/", () => {
    let app: string;
    beforeAll(() => {
      // The runtime stage's /app: node_modules, package.json, dist/ (from the builder), config/, docker/.
      app = mkdtempSync(path.join(tmpdir(), "edgellm-image-"));
      for (const dir of ["dist", "config"]) cpSync(path.join(REPO_ROOT, dir), path.join(app, dir), { recursive: true });
      mkdirSync(path.join(app, "docker"));
      for (const file of ["package.json", "docker/entrypoint.sh", "docker/healthcheck.mjs"]) cpSync(path.join(REPO_ROOT, file), path.join(app, file));
      symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(app, "node_modules"));
    });
    afterAll(() => rmSync(app, { recursive: true, force: true }));

    it("runs dist/cli.js and its worker dist/worker/main.js with node alone", async () => {
      const model = await tinyModel();
      const cli = spawnCli([], {
        env: { EDGELLM_MODEL_SOURCE: model, EDGELLM_MODEL_CONTEXT_SIZE: "256", EDGELLM_MODEL_SEQUENCES: "1", EDGELLM_MODEL_THREADS: "1", EDGELLM_SERVER_HOST: "127.0.0.1", EDGELLM_SERVER_PORT: "0" },
      }, [path.join(app, "docker/entrypoint.sh")]);
      try {
        const url = await cli.url;
        await waitHealthy(url);
        const tree = processTree(cli.child.pid!);
        expect(tree[0]!.line).toBe("node --enable-source-maps dist/cli.js");
        expect(tree.find((p) => p.line.includes("worker/main"))?.line).toContain(path.join(app, "dist/worker/main.js"));
        expect(tree.filter((p) => p.line.includes("tsx"))).toEqual([]);
      } finally {
        cli.child.kill("SIGTERM");
      }
      expect(await cli.exit).toEqual({ code: 0, signal: null });
      expect(cli.stderr()).toBe("");
    });
  });

  it("an unknown profile is one line naming the choices, exit 2", async () => {
    const cli = spawnCli([], { env: { EDGELLM_PROFILE: "edge-512mb" } }, ENTRYPOINT);
    expect((await cli.exit).code).toBe(2);
    expect(cli.stderr().trim()).toMatch(/^edgellm: EDGELLM_PROFILE=edge-512mb: no such profile \(config\/edge-512mb.yaml\); profiles: .*edge-1gb.*$/);
  });
});
