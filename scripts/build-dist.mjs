/**
 * Run by `npm start` (scripts/start.mjs) before the server starts: transpiles src/ into dist/
 * (esbuild, one output file per source file, no bundling, no type check: `npm run typecheck` and
 * `npm test` do that), so the server and its model worker start on plain JavaScript instead of
 * transpiling TypeScript through tsx's loader on every start (see README "Cold start").
 * Non-TypeScript files under src/ (the playground's assets) are copied beside the output.
 *
 * node-llama-cpp (patched, see patches/) is bundled into one file, dist/vendor/node-llama-cpp.js,
 * and dist/ imports it from there: Node loads one module instead of resolving and compiling about
 * 300 (0.4 s of the model worker's start, 0.13 s bundled). Its files locate the package's own
 * folders (llama/, bins/) from `import.meta.url`, which the bundle rewrites to each file's place
 * relative to the bundle, so a moved checkout or the Docker image's /app still finds them. The
 * packages the main process imports (Fastify and its plugins, prom-client, yaml, TypeBox) are
 * bundled the same way into dist/vendor/server.js (SERVER_PACKAGES below).
 *
 * Nothing is done when dist/ was built from exactly the current sources: the fingerprint of
 * every file's path, size and mtime (and of this script, node-llama-cpp's package.json and its
 * patch) is kept in dist/.fingerprint, so an unchanged tree costs a few milliseconds. Any change
 * rebuilds all of dist/ (about 1 s).
 *
 * Plain JavaScript, run by node itself: it must not need the build it makes.
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src");
const outDir = join(root, "dist");
const nodeLlamaCpp = join(root, "node_modules", "node-llama-cpp");
const VENDOR_BUNDLE = "vendor/node-llama-cpp.js";
/** node-llama-cpp's internal modules that src/engine/addon-builds.ts uses (`nlcInternals`). */
const NLC_INTERNAL_FILES = [
  "bindings/utils/getPlatform.js",
  "bindings/utils/cloneLlamaCppRepo.js",
  "bindings/utils/binariesGithubRelease.js",
  "config.js",
  "bindings/utils/getBuildFolderNameForBuildOptions.js",
  "bindings/utils/compileLLamaCpp.js",
];
/**
 * The packages the main process imports, bundled into dist/vendor/server.js: Node then loads one
 * file instead of resolving and compiling 300-odd (fastify and its dependencies, prom-client with
 * @opentelemetry/api, yaml...): 0.16 s to import instead of 0.32 to 0.35 here. The model worker
 * imports none of them. The bundle exports only the bindings dist/ imports, each under a name
 * made of its package's (`fastify__default`, `prom_client__Counter`).
 */
const SERVER_PACKAGES = ["fastify", "fastify-plugin", "@fastify/cors", "@fastify/sse", "@fastify/static", "prom-client", "yaml", "@sinclair/typebox", "@sinclair/typebox/value"];
const SERVER_BUNDLE = "vendor/server.js";
/** esbuild options both vendor bundles share: one ESM file whose bundled CommonJS dependencies can require Node's built-in modules. */
const VENDOR_BUILD = {
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  logLevel: "warning",
  banner: { js: 'import { createRequire as __edgellmCreateRequire } from "node:module"; const require = __edgellmCreateRequire(import.meta.url);' },
};
const SERVER_NAMES = SERVER_PACKAGES.map((n) => n.replace(/[/.]/g, "\\$&")).join("|");
const SERVER_IMPORT = new RegExp(`^import\\s+([^;"]+?)\\s+from\\s*"(${SERVER_NAMES})";?$`, "gm");
/** A reference to a server package still there after SERVER_IMPORT's rewrite: a form the bundle does not handle. */
const SERVER_LEFTOVER = new RegExp(`(?:\\bfrom\\s*|\\bimport\\s*\\(?\\s*)"(${SERVER_NAMES})"`);
const bundleName = (name, binding) => `${name.replace(/[^A-Za-z0-9]/g, "_")}__${binding}`;

/** The bindings of one `import <clause> from "<name>"`, as imports from the server bundle; records what the bundle must export. */
function serverBindings(clause, name, wanted, file) {
  const bindings = [];
  const parts = /^(?:([\w$]+)\s*,?\s*)?(?:\*\s+as\s+([\w$]+)|\{([^}]*)\})?$/.exec(clause.trim());
  if (!parts) throw new Error(`build-dist: ${file}: cannot read the import of ${name} (${clause})`);
  const [, def, namespace, named] = parts;
  if (def) {
    wanted.default = true;
    bindings.push(`${bundleName(name, "default")} as ${def}`);
  }
  if (namespace) {
    wanted.namespace = true;
    bindings.push(`${bundleName(name, "ns")} as ${namespace}`);
  }
  for (const spec of (named ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const [imported, local = imported] = spec.split(/\s+as\s+/);
    wanted.named.add(imported);
    bindings.push(`${bundleName(name, imported)} as ${local}`);
  }
  return bindings;
}

/** The server bundle's entry: every binding dist/ imports, re-exported under its bundle name. */
function serverBundleSource(imports) {
  const lines = [];
  for (const [name, wanted] of imports) {
    const from = JSON.stringify(name);
    const named = [...(wanted.default ? ["default"] : []), ...wanted.named].map((b) => `${b} as ${bundleName(name, b)}`);
    if (named.length) lines.push(`export { ${named.join(", ")} } from ${from};`);
    if (wanted.namespace) lines.push(`export * as ${bundleName(name, "ns")} from ${from};`);
  }
  return lines.join("\n");
}
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
const inputs = [
  ...files.map((f) => join(srcDir, f)),
  fileURLToPath(import.meta.url),
  join(root, "tsconfig.json"),
  join(nodeLlamaCpp, "package.json"),
  ...readdirSync(join(root, "patches")).map((f) => join(root, "patches", f)),
];
for (const file of inputs) {
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
  // The bundle exports the package and, as `edgellmInternalModules`, the internal modules that
  // src/engine/addon-builds.ts reads (by file when not bundled): loading those files beside the
  // bundle would load a second copy of half the package.
  const internal = NLC_INTERNAL_FILES.map((file, i) => [file, `m${i}`, JSON.stringify(join(nodeLlamaCpp, "dist", file))]);
  await build({
    stdin: {
      contents: [
        `export * from ${JSON.stringify(join(nodeLlamaCpp, "dist", "index.js"))};`,
        ...internal.map(([, name, path]) => `import * as ${name} from ${path};`),
        `export const edgellmInternalModules = { ${internal.map(([file, name]) => `${JSON.stringify(file)}: ${name}`).join(", ")} };`,
      ].join("\n"),
      resolveDir: root,
      loader: "js",
    },
    outfile: join(tmpDir, VENDOR_BUNDLE),
    ...VENDOR_BUILD,
    // Packages loaded at run time by name: the prebuilt addons for other platforms, a native
    // module of the downloader. They resolve from the bundle's place as from the package's.
    external: ["@node-llama-cpp/*", "@reflink/*"],
    plugins: [
      {
        name: "node-llama-cpp-file-urls",
        setup(b) {
          b.onLoad({ filter: /[\\/]node-llama-cpp[\\/]dist[\\/].*\.js$/ }, (args) => {
            const fromBundle = relative(dirname(join(outDir, VENDOR_BUNDLE)), args.path).split(sep).join("/");
            const url = `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`;
            return { contents: readFileSync(args.path, "utf8").replaceAll("import.meta.url", url), loader: "js" };
          });
        },
      },
      {
        // node-llama-cpp's terminal output (its CLI, progress bars), which the server never draws,
        // brings packages whose top level did costly work as the bundle loaded: an Intl.Segmenter
        // (string-width, slice-ansi; the first one loads ICU's break-iterator data, 13 ms here) and
        // string-width's /^\p{RGI_Emoji}$/v (13 ms to compile). A top-level segmenter used only
        // through `.segment(...)`, and that pattern, are made on first use instead; code written
        // otherwise is bundled as it is.
        name: "lazy-terminal-text",
        setup(b) {
          b.onLoad({ filter: /[\\/]node_modules[\\/].*\.js$/ }, (args) => {
            const source = readFileSync(args.path, "utf8");
            if (!source.includes("new Intl.Segmenter(") && !source.includes("RGI_Emoji")) return undefined;
            // The uses are counted in the code without its comments (roughly: a `//` inside a
            // string also cuts its line, which only makes the check stricter).
            const uncommented = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
            const code = source
              .replace(/^const (\w+) = new Intl\.Segmenter\(([^;\n]*)\);$/gm, (whole, name, options) => {
                const uses = uncommented.match(new RegExp(`\\b${name}\\b`, "g")).length - 1;
                const segmentCalls = uncommented.match(new RegExp(`\\b${name}\\.segment\\(`, "g"))?.length ?? 0;
                if (uses !== segmentCalls) return whole;
                return `let ${name}Made;\nconst ${name} = { segment: (text) => (${name}Made ??= new Intl.Segmenter(${options})).segment(text) };`;
              })
              .replace(
                /^const rgiEmojiRegex = (\/\^\\p\{RGI_Emoji\}\$\/v);$/m,
                "let rgiEmojiRegexMade;\nconst rgiEmojiRegex = { test: (segment) => (rgiEmojiRegexMade ??= $1).test(segment) };",
              );
            return { contents: code, loader: "js" };
          });
        },
      },
    ],
  });
  // dist/ imports node-llama-cpp and the server's packages from their bundles (esbuild leaves a
  // transpiled file's imports as written).
  const serverImports = new Map(SERVER_PACKAGES.map((name) => [name, { default: false, namespace: false, named: new Set() }]));
  const rewrites = [];
  for (const file of sources) {
    const out = join(tmpDir, file.replace(/\.ts$/, ".js"));
    const relativeTo = (bundle) => {
      const path = relative(dirname(out), join(tmpDir, bundle)).split(sep).join("/");
      return JSON.stringify(path.startsWith(".") ? path : `./${path}`);
    };
    const code = readFileSync(out, "utf8");
    const rewritten = code
      .replace(/(\bfrom\s*|\bimport\s*\(\s*)"node-llama-cpp"/g, (_, head) => `${head}${relativeTo(VENDOR_BUNDLE)}`)
      .replace(SERVER_IMPORT, (_, clause, name) => `import { ${serverBindings(clause, name, serverImports.get(name), file).join(", ")} } from ${relativeTo(SERVER_BUNDLE)};`);
    const leftover = SERVER_LEFTOVER.exec(rewritten);
    if (leftover) {
      throw new Error(`build-dist: ${file} imports ${leftover[1]} in a form the server bundle does not handle (a static import with default, named or namespace bindings)`);
    }
    if (rewritten !== code) rewrites.push([out, rewritten]);
  }
  await build({
    stdin: { contents: serverBundleSource(serverImports), resolveDir: root, loader: "js" },
    outfile: join(tmpDir, SERVER_BUNDLE),
    ...VENDOR_BUILD,
    // pino's transports (pino-pretty in a terminal) load worker files from pino's own folder, so
    // it stays a package, which Fastify's own require of it then shares (one pino, one set of its symbols).
    external: ["pino"],
  });
  for (const [out, code] of rewrites) writeFileSync(out, code);
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
