/**
 * The web playground: `/` serves the page, `/ui/*` its ES modules and styles (committed source
 * in src/server/ui, no build step), `/ui/vendor/*` the browser builds of marked, DOMPurify and
 * the highlight.js styles straight from node_modules. highlight.js ships its languages as
 * CommonJS only, so they are wrapped into one ES module here, once. The page and its assets
 * are public (the page asks for an API key itself); every API call it makes is not.
 */
import type { FastifyPluginAsync } from "fastify";
import fastifyStatic from "@fastify/static";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServerDeps } from "../deps.js";

const require = createRequire(import.meta.url);
const UI_DIR = fileURLToPath(new URL("../ui/", import.meta.url));
const HLJS_DIR = dirname(require.resolve("highlight.js/package.json"));
const VENDOR_ROOTS = [dirname(require.resolve("marked")), dirname(require.resolve("dompurify")), join(HLJS_DIR, "styles")];
const VENDOR_FILES = new Set(["marked.esm.js", "purify.es.mjs", "github-dark.min.css", "github.min.css"]);

/** highlight.js core plus its "common" languages (the set its own common build registers) as one ES module. */
function highlightModule(): string {
  const lib = join(HLJS_DIR, "lib");
  const cjs = (file: string) => `(() => { const module = { exports: {} }; ${readFileSync(join(lib, file), "utf8")}\n; return module.exports; })()`;
  const languages = [...readFileSync(join(lib, "common.js"), "utf8").matchAll(/registerLanguage\('([\w-]+)', require\('\.\/languages\/([\w-]+)'\)\)/g)];
  return [
    `const hljs = ${cjs("core.js")};`,
    ...languages.map(([, name, file]) => `hljs.registerLanguage(${JSON.stringify(name)}, ${cjs(`languages/${file}.js`)});`),
    "export default hljs;",
  ].join("\n");
}

export const uiRoutes: FastifyPluginAsync<ServerDeps> = async (app) => {
  // The page and its assets load without a key (the page asks for one); the hook reaches the static plugins' routes too.
  app.addHook("onRoute", (route) => {
    route.config = { ...route.config, public: true };
  });
  await app.register(fastifyStatic, { root: UI_DIR, prefix: "/ui/", index: false, wildcard: true });
  await app.register(fastifyStatic, {
    root: VENDOR_ROOTS,
    prefix: "/ui/vendor/",
    decorateReply: false,
    allowedPath: (path) => VENDOR_FILES.has(path.replace(/^\//, "")),
  });
  let highlight: string | undefined;
  app.get("/ui/vendor/highlight.mjs", async (_req, reply) => {
    highlight ??= highlightModule();
    return reply.type("text/javascript; charset=utf-8").header("cache-control", "public, max-age=3600").send(highlight);
  });
  app.get("/", (_req, reply) => reply.sendFile("index.html"));
};
