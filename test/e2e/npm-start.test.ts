/**
 * `npm start` runs the server from dist/ (scripts/start.mjs: dist/ brought up to date with src/
 * by scripts/build-dist.mjs), main process and model worker on plain JavaScript, no tsx loader.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { describe, it, expect, beforeAll } from "vitest";
import { scriptedModel } from "../helpers/models.js";
import { processTree, REPO_ROOT, spawnCli, waitHealthy } from "../helpers/cli.js";

/** The server's compiled files under dist/, the bundle aside. */
const distFiles = () =>
  (readdirSync(join(REPO_ROOT, "dist"), { recursive: true }) as string[])
    .filter((f) => f.endsWith(".js") && !f.startsWith("vendor"))
    .map((f) => join(REPO_ROOT, "dist", f));

let modelPath: string;
beforeAll(async () => {
  modelPath = await scriptedModel(["Hello from dist."]);
});

describe("npm start", () => {
  it("serves from dist/ built from the current src/, main process and worker without tsx", async () => {
    const cli = spawnCli(
      ["--model", modelPath, "--alias", "m", "--port", "0", "--host", "127.0.0.1", "--ctx-size", "512", "--parallel", "1", "--threads", "1"],
      { detached: true },
      ["npm", "start", "--silent", "--"],
    );
    try {
      const url = await cli.url;
      await waitHealthy(url);
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none" });
      const reply = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
      expect(reply.choices[0]!.message.content).toBe("Hello from dist.");

      const tree = processTree(cli.child.pid!);
      // npm runs the script through `sh -c`, whose command line names start.mjs too.
      const server = tree.find((p) => /^\S*node .*scripts\/start\.mjs/.test(p.line));
      const worker = tree.find((p) => p.line.includes("worker/main"));
      expect(server).toBeDefined();
      expect(worker?.line).toContain(join(REPO_ROOT, "dist/worker/main.js"));
      expect(tree.filter((p) => p.line.includes("tsx"))).toEqual([]);
      expect(readFileSync(join(REPO_ROOT, "dist/.fingerprint"), "utf8")).toMatch(/^[0-9a-f]{64}$/);
      // node-llama-cpp comes from its one-file bundle (scripts/build-dist.mjs); the engine loaded
      // its addon through it above, from the package's own folders.
      const byName = /(from\s*|import\s*\(\s*)"node-llama-cpp"/;
      const importers = distFiles().filter((f) => readFileSync(f, "utf8").includes("vendor/node-llama-cpp.js"));
      expect(importers.map((f) => f.slice(REPO_ROOT.length))).toEqual(expect.arrayContaining(["dist/engine/backend.js", "dist/engine/engine.js"]));
      expect(distFiles().filter((f) => byName.test(readFileSync(f, "utf8")))).toEqual([]);
      // So do the main process's packages (vendor/server.js), which the worker's files never import.
      const serverPackages = /(from\s*|import\s*\(\s*)"(fastify|fastify-plugin|@fastify\/[\w-]+|prom-client|yaml|@sinclair\/typebox[\w/]*)"/;
      expect(distFiles().filter((f) => serverPackages.test(readFileSync(f, "utf8")))).toEqual([]);
      const serverImporters = distFiles().filter((f) => readFileSync(f, "utf8").includes("vendor/server.js"));
      expect(serverImporters.map((f) => f.slice(REPO_ROOT.length))).toEqual(expect.arrayContaining(["dist/server/app.js", "dist/config/files.js"]));
      expect(serverImporters.filter((f) => f.includes("/dist/worker/") || f.includes("/dist/engine/"))).toEqual([]);
      // The terminal-text packages' segmenters and string-width's emoji pattern are made on first
      // use in the bundle: none is made at its top level.
      const bundle = readFileSync(join(REPO_ROOT, "dist/vendor/node-llama-cpp.js"), "utf8");
      expect(bundle.match(/Made\d* \?\?= new Intl\.Segmenter\(/g)?.length).toBeGreaterThanOrEqual(3);
      expect(bundle).toContain("rgiEmojiRegexMade ??=");
      expect(bundle).not.toMatch(/^var \w+ = new Intl\.Segmenter\(/m);

      // The server drains and exits 0 on SIGTERM; npm passes its exit code on.
      process.kill(server!.pid, "SIGTERM");
      expect(await cli.exit).toEqual({ code: 0, signal: null });
    } finally {
      if (cli.child.exitCode === null) process.kill(-cli.child.pid!, "SIGKILL");
    }
  });
});
