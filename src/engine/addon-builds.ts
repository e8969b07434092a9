/**
 * The node-llama-cpp addons built from source with the kvUnified patch (patches/), and how to find
 * them on disk without loading them.
 *
 * node-llama-cpp keeps each local build in node_modules/node-llama-cpp/llama/localBuilds/<name>,
 * where <name> is `<platform>-<arch>[-release-<llama.cpp release>]-<hash of the custom CMake
 * options>`. Nothing else goes into the name (not the distro, not the compiler), so a build is
 * found only with exactly the options it was built with. Both `scripts/build-addon.ts` and
 * `backend.ts` take the options from here so that they never drift apart.
 *
 * This module imports nothing from src/ and only node-llama-cpp's internals, so the Docker
 * builder stage can copy it alone with the build script (and keep the 30-minute compile cached
 * across source changes).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

export type AddonProfile = "portable" | "native";

/**
 * Like node-llama-cpp's prebuilt addons: one library per CPU variant, picked at run time
 * (GGML_CPU_ALL_VARIANTS needs GGML_BACKEND_DL), no -march=native. For Docker images and any
 * machine other than the one that built it. About 30 minutes on 2 cores.
 */
export const PORTABLE_CMAKE_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  GGML_NATIVE: "OFF",
  GGML_BACKEND_DL: "ON",
  GGML_CPU_ALL_VARIANTS: "ON",
  GGML_OPENMP: "OFF",
});

/** -march=native, one CPU backend linked in: for this machine only (tests). About 7 minutes on 2 cores. */
export const NATIVE_CMAKE_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  GGML_NATIVE: "ON",
  GGML_OPENMP: "OFF",
});

export const ADDON_PROFILES: Readonly<Record<AddonProfile, Readonly<Record<string, string>>>> = Object.freeze({
  portable: PORTABLE_CMAKE_OPTIONS,
  native: NATIVE_CMAKE_OPTIONS,
});

/** The order in which unified-KV builds are tried: portable first, as it runs anywhere. */
export const UNIFIED_KV_PROFILES: readonly AddonProfile[] = Object.freeze(["portable", "native"] as const);

/** Environment prefix node-llama-cpp turns into CMake options (`NODE_LLAMA_CPP_CMAKE_OPTION_<NAME>=<value>`). */
export const CMAKE_OPTION_ENV_PREFIX = "NODE_LLAMA_CPP_CMAKE_OPTION_";

/**
 * Environment variables node-llama-cpp 3.22 merges into the CMake options (and so into the build
 * folder name) on every `getLlama()` and build: see resolveCustomCmakeOptions.js.
 */
const LEGACY_CMAKE_ENV = new Set([
  "GGML_METAL",
  "GGML_METAL_EMBED_LIBRARY",
  "GGML_CUDA",
  "GGML_VULKAN",
  "GGML_OPENBLAS",
  "GGML_BLAS_VENDOR",
  "GGML_CUDA_FORCE_DMMV",
  "GGML_CUDA_DMMV_X",
  "GGML_CUDA_MMV_Y",
  "GGML_CUDA_F16",
  "GGML_CUDA_KQUANTS_ITER",
  "GGML_CUDA_PEER_MAX_BATCH_SIZE",
  "GGML_HIPBLAS",
]);

/** Whether node-llama-cpp would read this environment variable as a CMake option. */
export function isCmakeOptionEnv(name: string): boolean {
  return (name.startsWith(CMAKE_OPTION_ENV_PREFIX) && name !== CMAKE_OPTION_ENV_PREFIX) || LEGACY_CMAKE_ENV.has(name);
}

/** `env` without the variables node-llama-cpp reads as CMake options. */
export function envWithoutCmakeOptions(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !isCmakeOptionEnv(name)));
}

/** The environment that makes `node-llama-cpp source download|build` build `profile`, and nothing else. */
export function buildEnvForProfile(profile: AddonProfile, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = envWithoutCmakeOptions(env);
  for (const [name, value] of Object.entries(ADDON_PROFILES[profile])) out[CMAKE_OPTION_ENV_PREFIX + name] = value;
  return out;
}

/**
 * Runs `fn` (a `getLlama()` call) with the CMake-option environment variables removed from
 * process.env, and puts them back afterwards. node-llama-cpp merges them into `cmakeOptions` at
 * lookup time, so a `NODE_LLAMA_CPP_CMAKE_OPTION_GGML_NATIVE=ON` left in the shell from a manual
 * build would turn every candidate below into a different option set (whose folder does not
 * exist: silently no unified KV), and would make the plain prebuilt lookup load a local build
 * with those options instead. Pinning makes what gets loaded depend only on the KV mode and on
 * what is built. Nothing else in the process reads these variables during the call.
 */
export async function withoutCmakeOptionEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved: [string, string][] = [];
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && isCmakeOptionEnv(name)) {
      saved.push([name, value]);
      delete process.env[name];
    }
  }
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) process.env[name] = value;
  }
}

/** The node-llama-cpp package directory (node_modules/node-llama-cpp). */
export function nodeLlamaCppDir(): string {
  return path.resolve(path.dirname(createRequire(import.meta.url).resolve("node-llama-cpp")), "..");
}

interface NlcInternals {
  getPlatform(): string;
  getClonedLlamaCppRepoReleaseInfo(): Promise<{ tag: string; llamaCppGithubRepo: string } | null>;
  builtinLlamaCppRelease: string;
  builtinLlamaCppGitHubRepo: string;
  llamaLocalBuildBinsDirectory: string;
  getBuildFolderNameForBuildOptions(options: {
    customCmakeOptions: Map<string, string>;
    platform: string;
    arch: string;
    gpu: false;
    llamaCpp: { repo: string; release: string };
  }): Promise<{ withCustomCmakeOptions: string }>;
  getLocalBuildBinaryPath(folderName: string): Promise<string | null>;
}

let internals: Promise<NlcInternals> | undefined;

/**
 * node-llama-cpp's own functions for naming and checking local builds (not exported by the
 * package, so imported by file). Using them rather than a copy keeps the lookup exactly
 * getLlama's; the version is pinned by the patch file (patches/node-llama-cpp+3.22.1.patch).
 */
function nlcInternals(): Promise<NlcInternals> {
  internals ??= (async () => {
    const dist = path.join(nodeLlamaCppDir(), "dist");
    // Compiled (dist/), node-llama-cpp is one bundle that carries these modules
    // (scripts/build-dist.mjs); importing the files beside it would load a second copy.
    const bundled = ((await import("node-llama-cpp")) as { edgellmInternalModules?: Record<string, Record<string, any>> }).edgellmInternalModules;
    const load = async (file: string): Promise<Record<string, any>> => {
      if (!bundled) return import(pathToFileURL(path.join(dist, file)).href);
      const found = bundled[file];
      if (!found) throw new Error(`node-llama-cpp's ${file} is missing from dist/vendor/node-llama-cpp.js (scripts/build-dist.mjs lists what it carries)`);
      return found;
    };
    const [platform, clone, release, config, folderName, compile] = await Promise.all([
      load("bindings/utils/getPlatform.js"),
      load("bindings/utils/cloneLlamaCppRepo.js"),
      load("bindings/utils/binariesGithubRelease.js"),
      load("config.js"),
      load("bindings/utils/getBuildFolderNameForBuildOptions.js"),
      load("bindings/utils/compileLLamaCpp.js"),
    ]);
    const out: NlcInternals = {
      getPlatform: platform.getPlatform,
      getClonedLlamaCppRepoReleaseInfo: clone.getClonedLlamaCppRepoReleaseInfo,
      builtinLlamaCppRelease: release.builtinLlamaCppRelease,
      builtinLlamaCppGitHubRepo: config.builtinLlamaCppGitHubRepo,
      llamaLocalBuildBinsDirectory: config.llamaLocalBuildBinsDirectory,
      getBuildFolderNameForBuildOptions: folderName.getBuildFolderNameForBuildOptions,
      getLocalBuildBinaryPath: compile.getLocalBuildBinaryPath,
    };
    for (const [name, value] of Object.entries(out)) {
      if (value === undefined) throw new Error(`node-llama-cpp internals changed: ${name} not found (edgellm expects node-llama-cpp 3.22)`);
    }
    return out;
  })();
  return internals;
}

/** Methods the patch adds to the addon: a build without one of them predates the patch and is rebuilt. */
const PATCH_METHODS = ["getKvUnified", "decodeAndSampleBatch"];

export interface LocalAddonBuild {
  profile: AddonProfile;
  /** The build folder under localBuilds/. */
  folder: string;
  /** Release/llama-addon.node in it. */
  binary: string;
  /**
   * Whether the addon was compiled with the current patch (patches/): the unified KV pool
   * (AddonContext.getKvUnified) and one native call per round (AddonContext.decodeAndSampleBatch).
   */
  unifiedKv: boolean;
}

/**
 * The finished local build of `profile` that `getLlama({ gpu: false, build: "never",
 * usePrebuiltBinaries: false, cmakeOptions: ADDON_PROFILES[profile] })` would load (with the
 * CMake-option env removed), or undefined. Same folder name, same completeness check
 * (llama-addon.node, build metadata and buildDone.status; a build in progress has no
 * buildDone.status yet), without loading the addon: whether it has the current patch is read
 * from the binary (the method names N-API registers are strings in it).
 */
export async function findLocalAddonBuild(profile: AddonProfile): Promise<LocalAddonBuild | undefined> {
  const nlc = await nlcInternals();
  const options = ADDON_PROFILES[profile];
  // getLlama names the folder after the llama.cpp release that is cloned, or the built-in one
  // when none is (or while `source download` re-clones it).
  const cloned = await nlc.getClonedLlamaCppRepoReleaseInfo();
  const { withCustomCmakeOptions: name } = await nlc.getBuildFolderNameForBuildOptions({
    customCmakeOptions: new Map(Object.entries(options)),
    platform: nlc.getPlatform(),
    arch: process.arch,
    gpu: false,
    llamaCpp: { repo: cloned?.llamaCppGithubRepo ?? nlc.builtinLlamaCppGitHubRepo, release: cloned?.tag ?? nlc.builtinLlamaCppRelease },
  });
  const binary = await nlc.getLocalBuildBinaryPath(name);
  if (binary === null) return undefined;
  const folder = path.join(nlc.llamaLocalBuildBinsDirectory, name);
  // The folder name is a hash of the options; check the recorded ones too, exactly.
  const metadata = JSON.parse(await readFile(path.join(path.dirname(binary), "_nlcBuildMetadata.json"), "utf8")) as {
    buildOptions?: { customCmakeOptions?: Record<string, string>; gpu?: unknown };
  };
  if (!sameOptions(metadata.buildOptions?.customCmakeOptions ?? {}, options) || metadata.buildOptions?.gpu !== false) return undefined;
  const addon = await readFile(binary);
  const unifiedKv = PATCH_METHODS.every((name) => addon.includes(name));
  return { profile, folder, binary, unifiedKv };
}

export function sameOptions(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && String(a[k]) === String(b[k]));
}

/** The first finished unified-KV build, in UNIFIED_KV_PROFILES order. */
export async function findUnifiedKvBuild(profiles: readonly AddonProfile[] = UNIFIED_KV_PROFILES): Promise<LocalAddonBuild | undefined> {
  for (const profile of profiles) {
    const build = await findLocalAddonBuild(profile);
    if (build?.unifiedKv) return build;
  }
  return undefined;
}
