/**
 * Picks and loads the node-llama-cpp addon for the configured KV pool mode.
 *
 * The prebuilt addon only has per-sequence KV caches: every sequence reserves its full
 * `contextSize` of cells up front. A unified pool (cells shared by all sequences, taken on
 * demand) needs an addon built from node-llama-cpp's bundled llama.cpp with the kvUnified patch
 * (`npm run build:addon`, or the native variant `npm test` builds once). Such builds live in
 * node_modules/node-llama-cpp/llama/localBuilds/ under a name hashed from their CMake options, so
 * each candidate is looked up with exactly its option set (addon-builds.ts).
 *
 * One process loads one addon: the local builds and the prebuilt one share the sonames
 * libggml-base.so and libllama-common.so, so after one is loaded another would bind to the
 * first one's libraries, and Node never unloads an addon. Candidates are therefore checked on
 * disk first (findLocalAddonBuild) and only the one that will be used is loaded.
 */
import { getLlama, type Llama, type LlamaLogLevel } from "node-llama-cpp";
import {
  ADDON_PROFILES,
  findLocalAddonBuild,
  sameOptions,
  UNIFIED_KV_PROFILES,
  withoutCmakeOptionEnv,
  type AddonProfile,
} from "./addon-builds.js";

export { NATIVE_CMAKE_OPTIONS, PORTABLE_CMAKE_OPTIONS, UNIFIED_KV_PROFILES, type AddonProfile } from "./addon-builds.js";

/**
 * `unified`: one KV cell pool shared by all sequences (needs a unified-KV local build; start-up
 * fails without one). `per-sequence`: the prebuilt addon, each sequence with its own cells.
 * `auto`: unified when such a build exists, otherwise per-sequence with a start-up notice.
 */
export type KvPoolMode = "auto" | "unified" | "per-sequence";

export interface LlamaBackendOptions {
  logLevel: LlamaLogLevel;
  logger: (level: LlamaLogLevel, message: string) => void;
  /** Local builds to consider, in order (default: portable, then native). */
  profiles?: readonly AddonProfile[];
}

export interface LlamaBackend {
  llama: Llama;
  /** Whether contexts may be created with `kvUnified: true`. */
  unifiedKv: boolean;
  build: AddonProfile | "prebuilt";
  /** A one-sentence message for the start-up log when `auto` fell back to per-sequence KV. */
  notice?: string;
}

export const BUILD_HINT = "`npm run build:addon` builds it (about 30 minutes on 2 cores)";

export async function loadLlamaBackend(mode: KvPoolMode, options: LlamaBackendOptions): Promise<LlamaBackend> {
  const { logLevel, logger } = options;
  if (mode === "per-sequence") return { llama: await loadPrebuilt(options), unifiedKv: false, build: "prebuilt" };

  const failures: string[] = [];
  for (const profile of options.profiles ?? UNIFIED_KV_PROFILES) {
    const found = await findLocalAddonBuild(profile);
    if (found === undefined) continue;
    if (!found.unifiedKv) {
      failures.push(`the ${profile} build in ${found.folder} predates the current patch (patches/)`);
      continue;
    }
    let llama: Llama;
    try {
      // build "never": a missing build is an error, never a compile. No prebuilt fallback and no
      // progress logs: this either loads exactly this build or nothing.
      llama = await withoutCmakeOptionEnv(() =>
        getLlama({
          gpu: false,
          build: "never",
          usePrebuiltBinaries: false,
          progressLogs: false,
          cmakeOptions: { ...ADDON_PROFILES[profile] },
          logLevel,
          logger,
        }),
      );
    } catch (err) {
      failures.push(`the ${profile} build in ${found.folder} failed to load (${(err as Error).message})`);
      continue;
    }
    const hasUnified = typeof (llama as any)._bindings?.AddonContext?.prototype?.getKvUnified === "function";
    if (llama.buildType !== "localBuild" || !hasUnified || !sameOptions(llama.cmakeOptions, ADDON_PROFILES[profile])) {
      await llama.dispose();
      throw new Error(
        `loading the ${profile} unified-KV addon from ${found.folder} gave a ${llama.buildType} build with ` +
          `${JSON.stringify(llama.cmakeOptions)}${hasUnified ? "" : " and no kvUnified support"}`,
      );
    }
    return { llama, unifiedKv: true, build: profile };
  }

  const why = failures.length > 0 ? failures.join("; ") : "no unified-KV node-llama-cpp addon is built";
  if (mode === "unified") throw new Error(`KV pool mode "unified" needs the unified-KV addon, but ${why}: ${BUILD_HINT}.`);
  return {
    llama: await loadPrebuilt(options),
    unifiedKv: false,
    build: "prebuilt",
    notice: `Unified KV pool is off because ${why}, so every sequence reserves its full context of KV cells; ${BUILD_HINT}.`,
  };
}

/**
 * Whether a worker started with `mode` gets a unified KV pool, judged from the builds on disk
 * without loading an addon (the main process sizes its memory estimate with it).
 */
export async function unifiedKvExpected(mode: KvPoolMode, profiles: readonly AddonProfile[] = UNIFIED_KV_PROFILES): Promise<boolean> {
  if (mode === "per-sequence") return false;
  for (const profile of profiles) if ((await findLocalAddonBuild(profile))?.unifiedKv) return true;
  return false;
}

/** node-llama-cpp's prebuilt CPU addon (per-sequence KV only). */
async function loadPrebuilt({ logLevel, logger }: LlamaBackendOptions): Promise<Llama> {
  // Without the CMake-option env, the only local build getLlama looks at first is one built with
  // no custom options at all (localBuilds/<platform>-<arch>); refuse that rather than report it
  // as the prebuilt addon.
  const llama = await withoutCmakeOptionEnv(() => getLlama({ gpu: false, build: "never", logLevel, logger }));
  if (llama.buildType !== "prebuilt") {
    await llama.dispose();
    throw new Error(
      `expected node-llama-cpp's prebuilt addon but getLlama loaded a ${llama.buildType} build ` +
        "(a build without custom CMake options in node_modules/node-llama-cpp/llama/localBuilds/ shadows it: remove it)",
    );
  }
  return llama;
}
