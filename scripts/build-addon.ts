/**
 * Builds node-llama-cpp's addon with the kvUnified patch from the llama.cpp source node-llama-cpp
 * ships (its git bundle: offline), for the unified KV pool.
 *
 *   tsx scripts/build-addon.ts [--profile portable|native] [--if-missing | --verify]
 *
 *   --profile portable   (default, `npm run build:addon`) CPU variants picked at run time like the
 *                        prebuilt addons, no -march=native: for Docker images and other machines.
 *   --profile native     -march=native: for this machine only (tests). Several times faster to build.
 *   --if-missing         exit 0 at once when a unified-KV build (portable or native) already exists,
 *                        found exactly as the server finds it (`npm test`'s pretest uses this).
 *   --verify             build nothing; exit 0 if the server would find this profile's unified-KV
 *                        build, 1 if not (the Dockerfile checks its trimmed build with it).
 *
 * Runs `node-llama-cpp source download --gpu false --noUsageExample` under `nice`, with the
 * profile's CMake options as NODE_LLAMA_CPP_CMAKE_OPTION_* (and no other such variables). That
 * re-clones node_modules/node-llama-cpp/llama/llama.cpp and rebuilds only this profile's folder
 * under llama/localBuilds/; other builds stay.
 */
import { spawn, spawnSync } from "node:child_process";
import { constants } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  ADDON_PROFILES,
  buildEnvForProfile,
  findLocalAddonBuild,
  findUnifiedKvBuild,
  nodeLlamaCppDir,
  type AddonProfile,
} from "../src/engine/addon-builds.js";

const USAGE = "usage: tsx scripts/build-addon.ts [--profile portable|native] [--if-missing | --verify]";

const { values } = parseArgs({
  options: {
    profile: { type: "string", default: "portable" },
    "if-missing": { type: "boolean", default: false },
    verify: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (!Object.hasOwn(ADDON_PROFILES, values.profile)) {
  console.error(`build-addon: unknown --profile ${values.profile}\n${USAGE}`);
  process.exit(2);
}
const profile = values.profile as AddonProfile;

if (values.verify) {
  const build = await findLocalAddonBuild(profile);
  if (build?.unifiedKv) {
    console.log(`build-addon: the ${profile} unified-KV addon is in place (${path.basename(build.folder)})`);
    process.exit(0);
  }
  console.error(`build-addon: the server would not find a ${profile} unified-KV addon` + (build ? ` (${build.folder} lacks the kvUnified patch)` : ""));
  process.exit(1);
}

if (values["if-missing"]) {
  const existing = await findUnifiedKvBuild();
  if (existing) {
    console.log(`build-addon: unified-KV addon present (${existing.profile} build, ${path.basename(existing.folder)}); not building`);
    process.exit(0);
  }
  console.log(`build-addon: no unified-KV addon built yet; building the ${profile} one (a few minutes, once)`);
}

const cli = path.join(nodeLlamaCppDir(), "dist", "cli", "cli.js");
const args = [cli, "source", "download", "--gpu", "false", "--noUsageExample"];
// nice: the compile takes every core for minutes; let interactive work and running servers go first.
const hasNice = spawnSync("nice", ["true"], { stdio: "ignore" }).status === 0;
const [command, commandArgs] = hasNice ? ["nice", ["-n", "15", process.execPath, ...args]] : [process.execPath, args];
const options = Object.entries(ADDON_PROFILES[profile]).map(([k, v]) => `${k}=${v}`).join(" ");
console.log(`build-addon: building the ${profile} unified-KV addon (${options})`);

const started = performance.now();
const code = await new Promise<number>((resolve) => {
  const child = spawn(command, commandArgs, { env: buildEnvForProfile(profile), stdio: "inherit" });
  child.once("error", (err) => {
    console.error(`build-addon: could not start the build: ${err.message}`);
    resolve(1);
  });
  child.once("exit", (exitCode, signal) => resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0)));
});
const seconds = Math.round((performance.now() - started) / 1000);
const took = `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
if (code !== 0) {
  console.error(`build-addon: the ${profile} build failed after ${took} (exit ${code})`);
  process.exit(code);
}
const built = await findLocalAddonBuild(profile);
if (!built?.unifiedKv) {
  console.error(
    `build-addon: the ${profile} build finished in ${took}, but ` +
      (built ? `${built.folder} has no kvUnified support (is patches/ applied? run npx patch-package)` : "the server would not find it"),
  );
  process.exit(1);
}
console.log(`build-addon: built the ${profile} unified-KV addon in ${took} (${built.folder})`);
