/**
 * `npm run pull -- <alias|hf:uri|https://…/file.gguf> [--dir models]`: downloads a GGUF through
 * node-llama-cpp's resolver, with a progress bar on a terminal and plain progress lines
 * otherwise. Ctrl+C or a failure leaves nothing under the final name. Offline, it fails with one
 * actionable line.
 */
import { parseArgs } from "node:util";
import path from "node:path";
import { pullModel, ModelSourceError } from "../src/models/resolve.js";
import { ProgressReporter } from "./lib/progress.js";
import { handleHelp } from "./lib/tool.js";

handleHelp(import.meta.url);

/** Short names for models we test against. */
const ALIASES: Record<string, string> = {
  "qwen3-0.6b": "hf:Qwen/Qwen3-0.6B-GGUF:Q8_0",
  "qwen3-1.7b": "hf:Qwen/Qwen3-1.7B-GGUF:Q8_0",
};

const usage = `usage: npm run pull -- <${Object.keys(ALIASES).join("|")}|hf:owner/repo:quant|https://host/file.gguf> [--dir models]\n`;
const { values, positionals } = parseArgs({ options: { dir: { type: "string", default: "models" } }, allowPositionals: true });
const name = positionals[0];
if (!name) {
  process.stderr.write(usage);
  process.exit(2);
}
const uri = ALIASES[name] ?? name;

const progress = new ProgressReporter({
  label: path.basename(uri.replace(/^hf:/, "")),
  tty: process.stderr.isTTY === true,
  columns: process.stderr.columns,
  write: (text) => process.stderr.write(text),
});
const interrupt = new AbortController();
process.on("SIGINT", () => {
  // A second Ctrl+C does not wait for the clean-up.
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort(new Error("interrupted"));
});

let bytes = 0;
try {
  const file = await pullModel(uri, values.dir!, {
    signal: interrupt.signal,
    onProgress: (done, total) => {
      bytes = total;
      progress.update(done, total);
    },
  });
  if (bytes > 0) progress.finish(bytes);
  process.stdout.write(`${file}\nstart it with: npm start -- --model ${file}\n`);
  process.exit(0);
} catch (err) {
  progress.abandon();
  if (interrupt.signal.aborted) {
    process.stderr.write(`pull: interrupted; nothing was kept under ${values.dir}/\n`);
    process.exit(130);
  }
  process.stderr.write(`pull: ${err instanceof ModelSourceError ? err.message : String(err)}\n`);
  process.exit(1);
}
