/**
 * The repacked-weights cache (model.repackCache): the first start on a q4_0 model (whose weights
 * llama.cpp repacks for its x86 kernels) writes the repacked buffer under the data directory's
 * repack/; later starts map that file instead of repacking and answer exactly as a start without
 * the cache does. A cache file that does not match the load (another version of the model file, a
 * truncated file) is replaced, and the directories of model files that are gone are removed.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tinyModel } from "../helpers/models.js";
import { processTree, spawnCli, waitHealthy } from "../helpers/cli.js";

const dataDir = mkdtempSync(join(tmpdir(), "edgellm-repack-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Start {
  answer: string;
  /** The worker's mappings of cache files when it had answered. */
  mapped: string[];
  /** The "model loaded" log line's repackCache. */
  logged: string;
}

/** Starts the server on `model`, asks one greedy question, and stops it. */
async function start(model: string, repackCache = true): Promise<Start> {
  const args = ["--model", model, "--alias", "m", "--port", "0", "--host", "127.0.0.1", "--threads", "1"];
  const cli = spawnCli([...args, "--set", `server.dataDir=${dataDir}`, "--set", `model.repackCache=${repackCache}`]);
  try {
    const url = await cli.url;
    await waitHealthy(url);
    const reply = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Say something." }], temperature: 0, max_tokens: 24 }),
    });
    const answer = ((await reply.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const [worker] = processTree(cli.child.pid!).filter((p) => p.line.includes("worker/main"));
    const mapped = readFileSync(`/proc/${worker!.pid}/maps`, "utf8")
      .split("\n")
      .filter((line) => line.endsWith(".repack"))
      .map((line) => line.slice(line.indexOf("/")));
    const logged = /"repackCache":"(\w+)"/.exec(cli.stdout())![1]!;
    return { answer, mapped: [...new Set(mapped)], logged };
  } finally {
    cli.child.kill("SIGTERM");
    await cli.exit;
  }
}

/** The cache files under the data directory. */
function cacheFiles(): string[] {
  const root = join(dataDir, "repack");
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".repack"))
    .map((f) => join(root, f))
    .sort();
}

/** `probe`'s first defined value, polled for up to 20 s (a start writes its cache file in the background). */
async function until<T>(probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = probe();
    if (value !== undefined || Date.now() > deadline) return value as T;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the repacked-weights cache", () => {
  it("is written by a first start, mapped by the next, and gives the answers of no cache", async () => {
    // A copy: the test changes its mtime, which other test files' copies must not see.
    const model = join(dataDir, "model.gguf");
    copyFileSync(await tinyModel("q4_0"), model);

    const none = await start(model, false);
    expect(none.logged).toBe("off");
    expect(none.mapped).toEqual([]);

    const first = await start(model);
    expect(first.logged).toBe("miss");
    expect(first.mapped).toEqual([]);
    const [file] = await until(() => (cacheFiles().length === 1 ? cacheFiles() : undefined));
    // the tiny model's q4_0 weights (its tied 151,936 x 64 embedding above all), repacked
    expect(statSync(file!).size).toBeGreaterThan(4_000_000);
    expect(readFileSync(join(file!, "..", "source"), "utf8")).toBe(model);

    const second = await start(model);
    expect(second.logged).toBe("hit");
    expect(second.mapped).toEqual([file]);
    expect(second.answer).toBe(none.answer);
    expect(first.answer).toBe(none.answer);
    expect(none.answer.length).toBeGreaterThan(0);

    // A truncated file is not this load's cache: repacked again, rewritten whole.
    const size = statSync(file!).size;
    truncateSync(file!, 4096);
    const truncated = await start(model);
    expect(truncated.logged).toBe("miss");
    expect(truncated.answer).toBe(none.answer);
    expect(await until(() => (statSync(file!).size === size ? size : undefined))).toBe(size);

    // Another version of the model file (a new mtime): a new cache file replaces the old one.
    utimesSync(model, new Date(), new Date(Date.now() + 60_000));
    const changed = await start(model);
    expect(changed.logged).toBe("miss");
    // written under its own name, then the directory's other cache files removed
    const replaced = await until(() => {
      const files = cacheFiles();
      return files.length === 1 && files[0] !== file ? files : undefined;
    });
    expect(replaced).toHaveLength(1);
    expect((await start(model)).mapped).toEqual(replaced);
  });

  it("drops the directories of model files that are gone", async () => {
    const gone = join(dataDir, "repack", "0123456789abcdef");
    mkdirSync(gone, { recursive: true });
    writeFileSync(join(gone, "source"), join(dataDir, "deleted.gguf"));
    writeFileSync(join(gone, "fedcba9876543210.repack"), "x");
    await start(await tinyModel("q4_0"));
    expect(readdirSync(join(dataDir, "repack"))).not.toContain("0123456789abcdef");
  });
});
