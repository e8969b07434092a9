/**
 * `npm start`: brings dist/ up to date with src/ (build-dist.mjs, a few milliseconds when nothing
 * changed) and runs the server from it in this same process, with the command line as given.
 */
await import("./build-dist.mjs");
await import("../dist/cli.js");
