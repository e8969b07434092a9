/**
 * Turns `model.source` into a local GGUF file: a path, an `hf:` URI pulled through
 * node-llama-cpp, a `synthetic:` preset written by our own synthesizer, or (empty) the
 * offline demo model. Every failure is one line that names the file or URI and the fix.
 */
import { openSync, readSync, closeSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { DEFAULT_WEIGHT_TYPE, ensureSyntheticModel, isSyntheticUri, parseSyntheticUri, type PresetModelSpec } from "./synthetic/index.js";

export const DEMO_SOURCE = "synthetic:qwen3-0.6b:q4_0";

export class ModelSourceError extends Error {
  override name = "ModelSourceError";
}

export interface ResolvedModel {
  path: string;
  /** Model id: file name without `.gguf`. */
  id: string;
  /** The weights are random: say so loudly. */
  synthetic: boolean;
}

export const modelIdFromPath = (file: string) => path.basename(file).replace(/\.gguf$/i, "");

/** Checks the file exists, is readable and starts with the GGUF magic, so a bad file never reaches the native loader. */
function checkGgufFile(file: string): void {
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ModelSourceError(`model file ${file} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof ModelSourceError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelSourceError(code === "ENOENT" ? `model file ${file} does not exist` : `cannot read model file ${file} (${code})`);
  }
  const header = Buffer.alloc(8);
  const fd = openSync(file, "r");
  try {
    readSync(fd, header, 0, 8, 0);
  } finally {
    closeSync(fd);
  }
  if (size < 24 || header.toString("latin1", 0, 4) !== "GGUF") {
    throw new ModelSourceError(`model file ${file} is not a GGUF file (bad magic; size ${size} bytes)`);
  }
  const version = header.readUInt32LE(4);
  if (version < 2 || version > 3) throw new ModelSourceError(`model file ${file} has unsupported GGUF version ${version}`);
}

export async function resolveModel(source: string, dir: string): Promise<ResolvedModel> {
  const effective = source || DEMO_SOURCE;
  if (isSyntheticUri(effective)) {
    let spec: PresetModelSpec;
    try {
      spec = parseSyntheticUri(effective);
    } catch (err) {
      throw new ModelSourceError((err as Error).message);
    }
    const file = await ensureSyntheticModel(spec, dir);
    // The cached file name carries a content hash; the served id stays readable.
    return { path: file, id: `synthetic-${spec.preset}-${spec.quant ?? DEFAULT_WEIGHT_TYPE}`, synthetic: true };
  }
  if (effective.startsWith("hf:") || /^https?:\/\//.test(effective)) {
    const file = await pullModel(effective, dir);
    return { path: file, id: modelIdFromPath(file), synthetic: false };
  }
  const file = localFile(effective, dir);
  checkGgufFile(file);
  return { path: file, id: modelIdFromPath(file), synthetic: false };
}

/** A relative path is tried from the working directory, then inside `dir` (`--model Qwen3-0.6B-Q8_0.gguf` finds models/Qwen3-0.6B-Q8_0.gguf). */
function localFile(source: string, dir: string): string {
  const direct = path.resolve(source);
  if (path.isAbsolute(source) || existsSync(direct)) return direct;
  const inDir = path.resolve(dir, source);
  return existsSync(inDir) ? inDir : direct;
}

/** Pulls (or finds already pulled) a model with node-llama-cpp's resolver; offline, a one-line error. */
export async function pullModel(uri: string, dir: string, onProgress?: (done: number, total: number) => void): Promise<string> {
  const { resolveModelFile } = await import("node-llama-cpp");
  try {
    return await resolveModelFile(uri, {
      directory: path.resolve(dir),
      cli: false,
      onProgress: onProgress ? ({ downloadedSize, totalSize }) => onProgress(downloadedSize, totalSize) : undefined,
    });
  } catch (err) {
    const message = err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err);
    const reason = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(message)
      ? "the model host cannot be reached (offline?)"
      : message.split("\n")[0]!.trim();
    throw new ModelSourceError(
      `cannot fetch ${uri}: ${reason}. Without network access, copy the .gguf file into ${dir}/ and start with --model <file.gguf>`,
    );
  }
}
