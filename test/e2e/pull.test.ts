/**
 * `npm run pull` end to end: the real script, node-llama-cpp's downloader, and a local HTTP
 * server in the test serving a synthesized GGUF (there is no Hugging Face here), including
 * dropped connections, a refusal and Ctrl+C.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatBytes } from "../../scripts/lib/progress.js";
import { REPO_ROOT } from "../helpers/cli.js";
import { tinyModel } from "../helpers/models.js";

/**
 * What the server does with the body of the n-th GET (1-based; GET #1 is the downloader's probe,
 * then one ranged GET per 5 MiB chunk, in parallel), given the first byte asked for.
 */
type Behaviour = (n: number, start: number) => "serve" | "drop" | "stall" | "refuse";

let body: Buffer;
let server: http.Server | undefined;
let gets = 0;
let rangeGets = 0;

async function serve(behaviour: Behaviour): Promise<string> {
  gets = 0;
  rangeGets = 0;
  server = http.createServer((req, res) => {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const what = behaviour(++gets, start);
    if (what === "refuse") {
      res.writeHead(404).end("gone");
      return;
    }
    if (range) rangeGets++;
    const end = range?.[2] ? Number(range[2]) : body.length - 1;
    const chunk = body.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, {
      "content-length": chunk.length,
      "accept-ranges": "bytes",
      ...(range ? { "content-range": `bytes ${start}-${end}/${body.length}` } : {}),
    });
    if (what === "serve") {
      res.end(chunk);
      return;
    }
    // Half the bytes, then hang up (drop) or go silent with the connection open (stall).
    res.write(chunk.subarray(0, chunk.length >> 1));
    if (what === "drop") setTimeout(() => req.socket.destroy(), 20);
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/models/Tiny-Q8_0.gguf`;
}

interface Run {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

function pull(args: string[]): Run {
  const child = spawn("node", ["--import", "tsx", "scripts/pull-model.ts", ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  return { code, stdout: () => out, stderr: () => err, kill: (signal) => child.kill(signal) };
}

async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}


describe("npm run pull", () => {
  beforeAll(async () => {
    body = readFileSync(await tinyModel());
  });
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  it("downloads to the final name with plain progress lines off a terminal", async () => {
    const url = await serve(() => "serve");
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-pull-"));
    const run = pull([url, "--dir", dir]);
    expect(await run.code).toBe(0);
    const file = path.join(dir, "Tiny-Q8_0.gguf");
    expect(run.stdout()).toBe(`${file}\nstart it with: npm start -- --model ${file}\n`);
    expect((await readFile(file)).equals(body)).toBe(true);
    expect(await readdir(dir)).toEqual(["Tiny-Q8_0.gguf"]);
    const size = formatBytes(body.length).replace(".", "\\.");
    const lines = run.stderr().trimEnd().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(new RegExp(`^Tiny-Q8_0\\.gguf: \\d+% \\([\\d.]+ \\w*B of ${size}, [\\d.]+ \\w*B/s, ETA [\\d:-]+\\)$`));
    expect(lines.at(-1)).toMatch(new RegExp(`^Tiny-Q8_0\\.gguf: ${size} in \\d+:\\d\\d \\([\\d.]+ \\w*B/s\\)$`));
    expect(run.stderr()).not.toContain("\r");

    // Pulled again: the file is found complete and nothing is downloaded.
    rangeGets = 0;
    const again = pull([url, "--dir", dir]);
    expect(await again.code).toBe(0);
    expect(again.stdout()).toContain(file);
    expect(rangeGets).toBe(0);
  });

  it("resumes after dropped connections and writes the exact bytes", async () => {
    const url = await serve((n) => (n >= 2 && n <= 4 ? "drop" : "serve"));
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-pull-"));
    const run = pull([url, "--dir", dir]);
    expect(await run.code).toBe(0);
    expect(gets).toBeGreaterThan(4);
    expect((await readFile(path.join(dir, "Tiny-Q8_0.gguf"))).equals(body)).toBe(true);
    expect(await readdir(dir)).toEqual(["Tiny-Q8_0.gguf"]);
  });

  it("a download cut off and then refused fails and leaves nothing in the directory", async () => {
    const url = await serve((n) => (n === 1 ? "serve" : n <= 4 ? "drop" : "refuse"));
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-pull-"));
    const run = pull([url, "--dir", dir]);
    expect(await run.code).toBe(1);
    expect(run.stderr()).toMatch(/^pull: cannot fetch http:\/\/127\.0\.0\.1:\d+\/models\/Tiny-Q8_0\.gguf: .*404.*--model <file\.gguf>$/m);
    expect(await readdir(dir)).toEqual([]);
  });

  it("Ctrl+C in the middle of a download leaves nothing in the directory", async () => {
    // The first chunk arrives whole and is written; the others stop halfway with the connection open.
    const url = await serve((n, start) => (n === 1 || start === 0 ? "serve" : "stall"));
    const dir = await mkdtemp(path.join(tmpdir(), "edgellm-pull-"));
    const run = pull([url, "--dir", dir]);
    const staged = async () => {
      const [pulling] = await readdir(dir);
      return pulling?.startsWith(".pull-") ? readdir(path.join(dir, pulling)) : [];
    };
    let partial: string[] = [];
    await until(() => (void staged().then((files) => (partial = files)), partial.length > 0), "the partial file");
    // ipull's name for an unfinished file, in the pull's own directory.
    expect(partial).toEqual(["Tiny-Q8_0.gguf.ipull"]);
    await until(() => /: [1-9]\d*% \(/.test(run.stderr()), "a progress line past 0%");
    run.kill("SIGINT");
    expect(await run.code).toBe(130);
    expect(run.stderr()).toContain(`pull: interrupted; nothing was kept under ${dir}/`);
    expect(await readdir(dir)).toEqual([]);
  });
});
