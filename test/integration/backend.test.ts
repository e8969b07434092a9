/**
 * loadLlamaBackend on the real addons: a unified-KV local build (npm test's pretest builds the
 * native one) and node-llama-cpp's prebuilt addon. Each load runs in its own child process
 * (test/helpers/backend-child.ts): the local builds and the prebuilt addon share library sonames
 * (libggml-base.so, libllama-common.so), so a second addon in one process would bind to the
 * first one's libraries, and Node never unloads an addon.
 */
import { describe, it, expect, beforeAll } from "vitest";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { tinyModel } from "../helpers/models.js";
import { REPO_ROOT } from "../helpers/cli.js";
import {
  ADDON_PROFILES,
  findLocalAddonBuild,
  findUnifiedKvBuild,
  type LocalAddonBuild,
} from "../../src/engine/addon-builds.js";
import { NATIVE_CMAKE_OPTIONS, PORTABLE_CMAKE_OPTIONS } from "../../src/engine/backend.js";

const run = promisify(execFile);

interface ChildResult {
  error?: string;
  unifiedKv: boolean;
  build: string;
  notice: string | null;
  buildType: string;
  cmakeOptions: Record<string, string>;
  addonHasGetKvUnified: boolean;
  sequences: number;
  requestedContextSize: number;
  contextKvUnified: boolean;
  contextSize: number;
  addonKvUnified: boolean | null;
  addonContextSize: number;
  refusal: string | null;
}

/** Env without the CMake-option variables, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("NODE_LLAMA_CPP_CMAKE_OPTION_")));
  return { ...env, ...extra };
}

async function child(mode: string, model: string, options: { profiles?: string; env?: Record<string, string> } = {}): Promise<ChildResult> {
  const args = ["--import", "tsx", "test/helpers/backend-child.ts", mode, model, ...(options.profiles === undefined ? [] : [options.profiles])];
  const { stdout, stderr } = await run(process.execPath, args, { cwd: REPO_ROOT, env: childEnv(options.env), maxBuffer: 16 * 2 ** 20 });
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as ChildResult;
  } catch {
    throw new Error(`backend-child printed no result.\nstdout: ${stdout}\nstderr: ${stderr}`);
  }
}

// Each child process imports node-llama-cpp, loads an addon and a model: seconds each on a busy 2-core box.
describe("loadLlamaBackend", { timeout: 180_000 }, () => {
  let model: string;
  let unified: LocalAddonBuild;
  let native: LocalAddonBuild | undefined;
  beforeAll(async () => {
    model = await tinyModel();
    const found = await findUnifiedKvBuild();
    if (!found) {
      throw new Error(
        "no unified-KV addon is built: run `npx tsx scripts/build-addon.ts --profile native --if-missing` (npm test's pretest does)",
      );
    }
    unified = found;
    const nativeBuild = await findLocalAddonBuild("native");
    native = nativeBuild?.unifiedKv ? nativeBuild : undefined;
  });

  it("exports the two option sets the build script builds", () => {
    expect(ADDON_PROFILES).toEqual({ portable: PORTABLE_CMAKE_OPTIONS, native: NATIVE_CMAKE_OPTIONS });
    expect(PORTABLE_CMAKE_OPTIONS).toEqual({ GGML_NATIVE: "OFF", GGML_BACKEND_DL: "ON", GGML_CPU_ALL_VARIANTS: "ON", GGML_OPENMP: "OFF" });
    expect(NATIVE_CMAKE_OPTIONS).toEqual({ GGML_NATIVE: "ON", GGML_OPENMP: "OFF" });
  });

  it('"unified" loads the unified-KV build found on disk; a kvUnified context pools contextSize × sequences cells', async () => {
    const r = await child("unified", model);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ unifiedKv: true, build: unified.profile, notice: null, buildType: "localBuild", addonHasGetKvUnified: true });
    // The on-disk lookup (what scripts/build-addon.ts --if-missing uses) agrees with getLlama.
    expect(r.cmakeOptions).toEqual(ADDON_PROFILES[unified.profile]);
    expect(r.contextKvUnified).toBe(true);
    expect(r.addonKvUnified).toBe(true);
    expect(r.contextSize).toBe(r.requestedContextSize * r.sequences);
    expect(r.addonContextSize).toBe(r.requestedContextSize * r.sequences);
  });

  it('"unified" loads the native build when it is the one asked for', async (ctx) => {
    if (!native) ctx.skip();
    const r = await child("unified", model, { profiles: "native" });
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ unifiedKv: true, build: "native", buildType: "localBuild", contextKvUnified: true, addonKvUnified: true });
    expect(r.cmakeOptions).toEqual(NATIVE_CMAKE_OPTIONS);
    expect(r.contextSize).toBe(r.requestedContextSize * r.sequences);
  });

  it('"auto" picks the unified-KV build when there is one, with no notice', async () => {
    const r = await child("auto", model);
    expect(r).toMatchObject({ unifiedKv: true, build: unified.profile, notice: null, contextKvUnified: true });
  });

  it('"per-sequence" loads the prebuilt addon, whose contexts keep contextSize per sequence and refuse kvUnified', async () => {
    const r = await child("per-sequence", model);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ unifiedKv: false, build: "prebuilt", notice: null, buildType: "prebuilt", addonHasGetKvUnified: false });
    expect(r.contextKvUnified).toBe(false);
    expect(r.addonKvUnified).toBeNull();
    expect(r.contextSize).toBe(r.requestedContextSize);
    expect(r.refusal).toMatch(/kvUnified requires .*built from source/);
  });

  it("CMake-option env variables change neither lookup (the backend pins its option sets)", async () => {
    // Without pinning, this would rename every candidate's build folder (no unified build found) ...
    const u = await child("unified", model, { env: { NODE_LLAMA_CPP_CMAKE_OPTION_EDGELLM_PIN_TEST: "1" } });
    expect(u.error).toBeUndefined();
    expect(u).toMatchObject({ unifiedKv: true, build: unified.profile, buildType: "localBuild" });
    // ... and this would make the prebuilt lookup load the local build with these options.
    const env = Object.fromEntries(Object.entries(ADDON_PROFILES[unified.profile]).map(([k, v]) => [`NODE_LLAMA_CPP_CMAKE_OPTION_${k}`, v]));
    const p = await child("per-sequence", model, { env });
    expect(p.error).toBeUndefined();
    expect(p).toMatchObject({ unifiedKv: false, build: "prebuilt", buildType: "prebuilt" });
  });

  it('without a unified-KV build, "auto" falls back to the prebuilt addon with a notice and "unified" fails in one line', async () => {
    const a = await child("auto", model, { profiles: "-" });
    expect(a.error).toBeUndefined();
    expect(a).toMatchObject({ unifiedKv: false, build: "prebuilt", buildType: "prebuilt", contextKvUnified: false });
    expect(a.notice).toBe(
      "Unified KV pool is off because no unified-KV node-llama-cpp addon is built, so every sequence reserves its full " +
        "context of KV cells; `npm run build:addon` builds it (about 30 minutes on 2 cores).",
    );
    const u = await child("unified", model, { profiles: "-" });
    expect(u.error).toBe(
      'KV pool mode "unified" needs the unified-KV addon, but no unified-KV node-llama-cpp addon is built: ' +
        "`npm run build:addon` builds it (about 30 minutes on 2 cores).",
    );
    expect(u.error).not.toContain("\n");
  });

  it("scripts/build-addon.ts --if-missing finds the same build and exits 0 without building", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/build-addon.ts", "--profile", "native", "--if-missing"], {
      cwd: REPO_ROOT,
      env: childEnv(),
    });
    expect(stdout.trim()).toBe(`build-addon: unified-KV addon present (${unified.profile} build, ${path.basename(unified.folder)}); not building`);
    await expect(run(process.execPath, ["--import", "tsx", "scripts/build-addon.ts", "--profile", "fast"], { cwd: REPO_ROOT })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining("unknown --profile fast"),
    });
  });
});
