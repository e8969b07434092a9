/**
 * npm run synth-model -- --preset <tiny|qwen3-0.6b> [--quant <f16|q8_0|q4_0>] [--seed n] [--pooling <mean|cls|last>] --out <file>
 * npm run synth-model -- --script <script.json> [--quant ...] --out <file>
 * npm run synth-model -- --script <script.json> --adapter-script <script.json> [--quant ...] --out <file> --adapter-out <file>
 *
 * script.json: an array of segments (strings, or {"token": "<think>"} for an added token), or
 * {"segments": [...], "triggers": [198, 271], "loop": true | <token index>}. With --adapter-script,
 * --out is a base model replying the script and --adapter-out a LoRA adapter GGUF with which it
 * replies the adapter script instead (loop is not supported there; triggers come from --script).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  QWEN3_PRESET_NAMES,
  WEIGHT_TYPES,
  planScript,
  synthesizeModel,
  synthesizeScriptedLora,
  type EmbeddingPooling,
  type Qwen3Preset,
  type ScriptSegment,
  type SyntheticModelSpec,
  type WeightType,
} from "../src/models/synthetic/index.js";
import { numberArg } from "./lib/args.js";
import { handleHelp } from "./lib/tool.js";

handleHelp(import.meta.url);

const USAGE = `usage: npm run synth-model -- (--preset <${QWEN3_PRESET_NAMES.join("|")}> [--seed n] [--pooling <mean|cls|last>] | --script <file.json>)
                            [--quant <${WEIGHT_TYPES.join("|")}>] --out <file.gguf>
       npm run synth-model -- --script <file.json> --adapter-script <file.json> [--quant ...] --out <base.gguf> --adapter-out <lora.gguf>`;

interface ScriptFile {
  segments: ScriptSegment[];
  triggers?: number[];
  loop?: boolean | number;
}

function readScript(path: string): ScriptFile {
  const parsed = JSON.parse(readFileSync(path, "utf8")) as ScriptFile | ScriptSegment[];
  return Array.isArray(parsed) ? { segments: parsed } : parsed;
}

function specFromArgs(values: { preset?: string; script?: string; quant?: string; seed?: string; pooling?: string }): SyntheticModelSpec {
  const quant = values.quant as WeightType | undefined;
  if (values.preset !== undefined && values.script === undefined) {
    const seed = values.seed === undefined ? undefined : numberArg("seed", values.seed);
    return {
      kind: "preset",
      preset: values.preset as Qwen3Preset,
      ...(quant === undefined ? {} : { quant }),
      ...(seed === undefined ? {} : { seed }),
      ...(values.pooling === undefined ? {} : { pooling: values.pooling as EmbeddingPooling }),
    };
  }
  if (values.script !== undefined && values.preset === undefined && values.seed === undefined && values.pooling === undefined) {
    return { kind: "scripted", ...readScript(values.script), ...(quant === undefined ? {} : { quant }) };
  }
  throw new Error(USAGE);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      preset: { type: "string" },
      script: { type: "string" },
      quant: { type: "string" },
      seed: { type: "string" },
      pooling: { type: "string" },
      out: { type: "string" },
      "adapter-script": { type: "string" },
      "adapter-out": { type: "string" },
    },
  });
  if (values.out === undefined) throw new Error(USAGE);
  if (values["adapter-script"] !== undefined || values["adapter-out"] !== undefined) {
    if (values.script === undefined || values["adapter-script"] === undefined || values["adapter-out"] === undefined) throw new Error(USAGE);
    const base = readScript(values.script);
    const quant = values.quant as WeightType | undefined;
    const spec = { segments: base.segments, adapterSegments: readScript(values["adapter-script"]).segments, triggers: base.triggers, ...(quant === undefined ? {} : { quant }) };
    await synthesizeScriptedLora(spec, { model: values.out, adapter: values["adapter-out"] });
    console.log(`wrote ${values.out} and its LoRA adapter ${values["adapter-out"]}`);
    return;
  }
  const spec = specFromArgs(values);
  if (spec.kind === "scripted") {
    const plan = planScript(spec);
    console.log(`script: ${plan.tokens.length} tokens, n_embd ${plan.embeddingLength}`);
  }
  const result = await synthesizeModel(spec, values.out);
  const mib = (result.bytes / 2 ** 20).toFixed(1);
  console.log(`wrote ${result.path}: ${mib} MiB in ${(result.milliseconds / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
