/**
 * `npm run pull -- <alias|hf:uri> [--dir models]`: downloads a real GGUF through node-llama-cpp's
 * `hf:` resolver, with a progress bar. Offline, it fails with one actionable line.
 */
import { parseArgs } from "node:util";
import { pullModel, ModelSourceError } from "../src/models/resolve.js";

/** Short names for models we test against. */
const ALIASES: Record<string, string> = {
  "qwen3-0.6b": "hf:Qwen/Qwen3-0.6B-GGUF:Q8_0",
  "qwen3-1.7b": "hf:Qwen/Qwen3-1.7B-GGUF:Q8_0",
};

const { values, positionals } = parseArgs({ options: { dir: { type: "string", default: "models" } }, allowPositionals: true });
const name = positionals[0];
if (!name) {
  process.stderr.write(`usage: npm run pull -- <${Object.keys(ALIASES).join("|")}|hf:owner/repo:quant> [--dir models]\n`);
  process.exit(2);
}
const uri = ALIASES[name] ?? name;
let last = 0;
try {
  const file = await pullModel(uri, values.dir!, (done, total) => {
    const pct = total ? Math.floor((done / total) * 100) : 0;
    if (pct !== last && process.stderr.isTTY) {
      last = pct;
      process.stderr.write(`\r${uri}: ${pct}% of ${(total / 2 ** 20).toFixed(0)} MiB`);
    }
  });
  process.stderr.write("\n");
  process.stdout.write(`${file}\nstart it with: npm start -- --model ${file}\n`);
} catch (err) {
  process.stderr.write(`pull: ${err instanceof ModelSourceError ? err.message : String(err)}\n`);
  process.exit(1);
}
