/**
 * Child process for test/integration/backend.test.ts: one addon per process (the local builds
 * and the prebuilt addon share library sonames, and Node never unloads an addon).
 *
 *   node --import tsx test/helpers/backend-child.ts <auto|unified|per-sequence> <model.gguf> [profiles,comma,separated|-]
 *
 * Prints one JSON line on stdout: what loadLlamaBackend returned and what a context made with it
 * reports, or {"error": message}.
 */
import { LlamaLogLevel } from "node-llama-cpp";
import { loadLlamaBackend, type AddonProfile, type KvPoolMode } from "../../src/engine/backend.js";

const [mode, modelPath, profilesArg] = process.argv.slice(2) as [KvPoolMode, string, string | undefined];
const profiles = profilesArg === undefined ? undefined : profilesArg === "-" ? [] : (profilesArg.split(",") as AddonProfile[]);
const SEQUENCES = 4;
const CONTEXT_SIZE = 256;

try {
  const backend = await loadLlamaBackend(mode, {
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => process.stderr.write(`[${level}] ${message.trimEnd()}\n`),
    ...(profiles === undefined ? {} : { profiles }),
  });
  const { llama } = backend;
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: SEQUENCES, contextSize: CONTEXT_SIZE, threads: 1, kvUnified: backend.unifiedKv });
  // What the prebuilt addon says when asked for a unified context anyway.
  let refusal: string | null = null;
  if (!backend.unifiedKv) {
    try {
      await (await model.createContext({ sequences: 2, contextSize: CONTEXT_SIZE, threads: 1, kvUnified: true })).dispose();
    } catch (err) {
      refusal = (err as Error).message;
    }
  }
  const ctx = (context as any)._ctx;
  console.log(
    JSON.stringify({
      unifiedKv: backend.unifiedKv,
      build: backend.build,
      notice: backend.notice ?? null,
      buildType: llama.buildType,
      cmakeOptions: llama.cmakeOptions,
      addonHasGetKvUnified: typeof (llama as any)._bindings.AddonContext.prototype.getKvUnified === "function",
      sequences: SEQUENCES,
      requestedContextSize: CONTEXT_SIZE,
      contextKvUnified: context.kvUnified,
      contextSize: context.contextSize,
      addonKvUnified: typeof ctx.getKvUnified === "function" ? ctx.getKvUnified() : null,
      addonContextSize: ctx.getContextSize(),
      refusal,
    }),
  );
  await context.dispose();
  await model.dispose();
  await llama.dispose();
} catch (err) {
  console.log(JSON.stringify({ error: (err as Error).message }));
}
