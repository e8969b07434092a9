/**
 * Turns `model.source` into a local GGUF file: a path, an `hf:` URI pulled through
 * node-llama-cpp, a `synthetic:` preset written by our own synthesizer, or (empty) the
 * offline demo model. Every failure is one line that names the file or URI and the fix.
 */
import { openSync, readSync, closeSync, statSync, existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat } from "node:fs/promises";
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
    checkGgufFile(file);
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

export interface PullOptions {
  /** Bytes done and total, as node-llama-cpp's downloader reports them. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting cancels the download and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Pulls (or finds already pulled) a model with node-llama-cpp's resolver and downloader;
 * offline, a one-line error. node-llama-cpp writes `<file>.ipull` next to the final name, but an
 * aborted download resolves as if it had finished and a killed pull leaves its `.ipull` among
 * the models; here the download goes to a fresh `.pull-*` directory inside `dir` and each file is
 * renamed into `dir` only once all of them have their full size, so a failed, interrupted or
 * killed pull never leaves anything under a final name.
 */
export async function pullModel(uri: string, dir: string, options: PullOptions = {}): Promise<string> {
  const { resolveModelFile, createModelDownloader } = await import("node-llama-cpp");
  const directory = path.resolve(dir);
  const present = await resolveModelFile(uri, { directory, cli: false, download: false }).catch(() => undefined);
  if (present) return present;
  await mkdir(directory, { recursive: true });
  const staging = await mkdtemp(path.join(directory, ".pull-"));
  const { onProgress, signal } = options;
  try {
    let downloader: Awaited<ReturnType<typeof createModelDownloader>>;
    try {
      downloader = await createModelDownloader({
        modelUri: uri,
        dirPath: staging,
        showCliProgress: false,
        onProgress: onProgress ? ({ downloadedSize, totalSize }) => onProgress(downloadedSize, totalSize) : undefined,
      });
    } catch (err) {
      throw fetchError(uri, dir, err);
    }
    // The entry point last: once it is in place, every part is.
    const files = downloader.filesInfo.map((f) => ({ ...f, finalPath: path.join(directory, f.fileName) }));
    const entry = path.join(directory, downloader.entrypointFilename);
    files.sort((a, b) => Number(a.finalPath === entry) - Number(b.finalPath === entry));
    if ((await Promise.all(files.map((f) => sizeOf(f.finalPath).then((size) => size === f.totalSize)))).every(Boolean)) {
      await downloader.cancel();
      return entry;
    }
    guardDownloaderRejections();
    try {
      await downloader.download({ signal });
    } catch (err) {
      await downloader.cancel();
      if (signal?.aborted) throw signal.reason;
      throw fetchError(uri, dir, err);
    }
    // An abort can end the download without an error: check before anything is renamed.
    signal?.throwIfAborted();
    for (const f of files) {
      const size = await sizeOf(f.filePath);
      if (size !== f.totalSize) throw new ModelSourceError(`cannot fetch ${uri}: ${f.fileName} arrived with ${size ?? 0} of ${f.totalSize} bytes`);
    }
    for (const f of files) await rename(f.filePath, f.finalPath);
    return entry;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

let downloaderRejectionsGuarded = false;

/**
 * ipull (node-llama-cpp's downloader) leaves the promise of each failed parallel slice without a
 * rejection handler, and a cancelled download can still fail a retry later, so one 404 on a range
 * would end the process although download() rejects with the same error. From the first
 * download on, a rejection raised inside ipull is dropped; any other still ends the process, as
 * Node does by default.
 */
function guardDownloaderRejections(): void {
  if (downloaderRejectionsGuarded) return;
  downloaderRejectionsGuarded = true;
  process.on("unhandledRejection", (reason) => {
    if (reason instanceof Error && reason.stack?.includes(`${path.sep}node_modules${path.sep}ipull${path.sep}`)) return;
    throw reason;
  });
}

const sizeOf = (file: string) => stat(file).then((s) => s.size, () => undefined);

function fetchError(uri: string, dir: string, err: unknown): ModelSourceError {
  const message = err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err);
  const reason = /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(message)
    ? "the model host cannot be reached (offline?)"
    : message.split("\n")[0]!.trim();
  return new ModelSourceError(
    `cannot fetch ${uri}: ${reason}. Without network access, copy the .gguf file into ${dir}/ and start with --model <file.gguf>`,
  );
}
