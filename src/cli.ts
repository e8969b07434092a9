/** `npm start -- [flags]`: parses flags into config overrides and starts the server. */
import { parseArgs } from "node:util";
import { readShippedWorkerSettings } from "./config/shipped.js";
import { preforkWorker, workerLaunch } from "./router/worker-process.js";

const FLAGS = {
  model: { type: "string", short: "m" },
  port: { type: "string" },
  host: { type: "string" },
  alias: { type: "string" },
  config: { type: "string", short: "c" },
  "ctx-size": { type: "string" },
  parallel: { type: "string" },
  threads: { type: "string" },
  "log-level": { type: "string" },
  "api-key": { type: "string", multiple: true },
  "api-key-file": { type: "string" },
  lora: { type: "string", multiple: true },
  set: { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

const FLAG_TO_KEY: Record<string, string> = {
  model: "model.source",
  port: "server.port",
  host: "server.host",
  alias: "model.alias",
  "ctx-size": "model.contextSize",
  parallel: "model.sequences",
  threads: "model.threads",
  "log-level": "log.level",
  "api-key-file": "server.apiKeyFile",
};

const HELP = `edgellm: OpenAI-compatible server for GGUF models

  npm start -- [--model <file.gguf|hf:owner/repo:quant|synthetic:preset[:quant]>] [--port 8080] [--host 127.0.0.1]

  --model, -m     model source (default: the offline demo model, random weights)
  --alias         model id to serve (default: file name without .gguf)
  --port, --host  where to listen
  --ctx-size      tokens per sequence            --parallel  concurrent sequences
  --threads       decode threads (0 = all cores) --log-level fatal|error|warn|info|debug|trace
  --api-key       accepted API key (repeatable; also EDGELLM_API_KEY)
  --api-key-file  file with one API key per line
  --lora          [id=]adapter.gguf: a LoRA adapter for the model (repeatable); requests select it
                  with "lora": [{"id": "<id>"}] or the model id <model>:<id>
  --config, -c    extra YAML config file
  --set key=value any config key, e.g. --set generation.defaultMaxTokens=512
`;

function parse(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  const set: Record<string, unknown> = {};
  for (const [flag, key] of Object.entries(FLAG_TO_KEY)) {
    const v = values[flag as keyof typeof values];
    if (typeof v === "string") set[key] = v;
  }
  // Whole keys: a key may hold a comma, so the list is not joined into one string.
  if (values["api-key"]?.length) set["server.apiKeys"] = values["api-key"];
  if (values.lora?.length) set["model.lora"] = values.lora;
  for (const kv of values.set ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new Error(`--set expects key=value, got '${kv}'`);
    set[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { help: values.help === true, file: values.config, set };
}

let parsed: ReturnType<typeof parse>;
try {
  parsed = parse(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`edgellm: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(HELP);
} else {
  // The model worker starts now, before this process loads its configuration and modules (about
  // 0.2 s here), with the shipped default heap limit and huge pages: a configuration that sets
  // others forks its worker after loading, as every start did before.
  const shipped = readShippedWorkerSettings();
  if (shipped) preforkWorker(workerLaunch(shipped.workerHeapMB, shipped.hugePages));
  import("./main.js").then(({ main }) => main({ file: parsed.file, set: parsed.set })).catch((err) => {
    process.stderr.write(`edgellm: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
