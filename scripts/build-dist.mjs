/**
 * Run by `npm start` (scripts/start.mjs) before the server starts: transpiles src/ into dist/
 * (esbuild, one output file per source file, no bundling, no type check: `npm run typecheck` and
 * `npm test` do that), so the server and its model worker start on plain JavaScript instead of
 * transpiling TypeScript through tsx's loader on every start (see README "Cold start").
 * Non-TypeScript files under src/ (the playground's assets) are copied beside the output.
 *
 * Nothing is done when dist/ was built from exactly the current sources: the fingerprint of
 * every file's path, size and mtime (and of this script) is kept in dist/.fingerprint, so an
 * unchanged tree costs a few milliseconds. Any change rebuilds all of dist/ (about 0.3 s).
 *
 * Plain JavaScript, run by node itself: it must not need the build it makes.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src");
const outDir = join(root, "dist");
const fingerprintFile = join(outDir, ".fingerprint");

/** Every file under `dir`, sorted, as paths relative to `srcDir`. */
function listFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(full));
    else if (entry.isFile()) files.push(relative(srcDir, full));
  }
  return files.sort();
}

const files = listFiles(srcDir);
const hash = createHash("sha256");
for (const file of [...files.map((f) => join(srcDir, f)), fileURLToPath(import.meta.url), join(root, "tsconfig.json")]) {
  const { size, mtimeMs } = statSync(file);
  hash.update(`${relative(root, file)}\0${size}\0${mtimeMs}\n`);
}
const fingerprint = hash.digest("hex");

let current = "";
try {
  current = readFileSync(fingerprintFile, "utf8");
} catch {
  // no build yet
}
if (current !== fingerprint) {
  const started = performance.now();
  // Loaded only when there is something to build: importing esbuild costs more than the check.
  const { build } = await import("esbuild");
  // Built beside dist/ and renamed into place, so a server starting meanwhile never sees half a build.
  const tmpDir = join(root, `.dist-${process.pid}`);
  rmSync(tmpDir, { recursive: true, force: true });
  const sources = files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"));
  await build({
    entryPoints: sources.map((f) => join(srcDir, f)),
    outdir: tmpDir,
    outbase: srcDir,
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: true,
    logLevel: "warning",
  });
  for (const file of files.filter((f) => !f.endsWith(".ts"))) {
    mkdirSync(dirname(join(tmpDir, file)), { recursive: true });
    copyFileSync(join(srcDir, file), join(tmpDir, file));
  }
  writeFileSync(join(tmpDir, ".fingerprint"), fingerprint);
  rmSync(outDir, { recursive: true, force: true });
  try {
    renameSync(tmpDir, outDir);
  } catch {
    // Another start built the same sources into dist/ first.
    rmSync(tmpDir, { recursive: true, force: true });
  }
  console.error(`edgellm: built dist/ from src/ (${sources.length} files, ${Math.round(performance.now() - started)} ms)`);
}
