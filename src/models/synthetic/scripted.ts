/**
 * Scripted models: one-layer qwen3 weights constructed (not trained) so that after a prompt
 * ending in a trigger token, greedy or sampled decoding emits a fixed script, then <|im_end|>.
 * The graph is llama.cpp's src/models/qwen3.cpp; the construction:
 *
 * Residual stream (n_embd dims): C = one dim per "state" token (trigger or script token),
 * B = a bias dim every token has (a zero embedding would RMS-normalize to 0 = uniform logits),
 * P = previous-token dims, T = rule-target dims.
 *
 * - Attention is a previous-token head. q and k come only from B, so q_norm/k_norm turn them
 *   into constants; those norm weights carry phases such that after NEOX RoPE the score is
 *   A^2/sqrt(d) * sum_j cos((dpos - 1) * theta_j): a sharp peak at the previous position
 *   (rope base 2 keeps every theta_j in (0.5, 1], far from aliasing within the context).
 *   V copies the previous token's C dim into its P dim.
 * - Most tokens occur once in the script: their successor is read linearly from their C dim by
 *   output.weight. Tokens whose successor depends on the previous token (a trigger that also
 *   occurs in the script, a repeated token such as "\n") get one FFN unit per context: an AND
 *   of C(current) and P(previous) built from SiLU gates and the bias, written to the T dim of
 *   the successor. A trigger's "any other previous token" context is an AND-NOT.
 * - Nothing matching (every prompt token, the end of the script) leaves only B, which
 *   output.weight maps to <|im_end|>.
 * Margins after the final RMS norm are >= 50 logits in every case (n_embd >= 32), far beyond
 * what temperature / top-k / top-p sampling can overturn.
 */
import { gguf, type GgufFile, type GgufTensor } from "./gguf-writer.js";
import { GgmlType, type WeightType } from "./quantize.js";
import { qwen3Model, type Fill, type Qwen3Shape } from "./qwen3.js";
import { QWEN3_VOCAB_SIZE, loadQwen3Vocab } from "./qwen3-vocab.js";
import { segmentScript, type ScriptSegment } from "./segmenter.js";

/**
 * "\n" (198) ends `<|im_start|>assistant\n` when thinking is on; "\n\n" (271) ends the empty
 * `<think>\n\n</think>\n\n` block the Qwen3 template renders when thinking is off.
 */
export const DEFAULT_TRIGGER_TOKENS: readonly number[] = [198, 271];

export interface ScriptOptions {
  readonly segments: readonly ScriptSegment[];
  /** Token ids after which the script starts. Default: DEFAULT_TRIGGER_TOKENS. */
  readonly triggers?: readonly number[];
  /**
   * Never end: after the last script token continue at script token 0 (`true`) or at the
   * given index into the script's token sequence (ScriptPlan.tokens).
   */
  readonly loop?: boolean | number;
  /** Default q8_0. */
  readonly weightType?: WeightType;
}

/** How the successor of one current token is chosen. */
interface Context {
  /** Previous tokens this context applies to, or "other": any previous token not named by a sibling context. */
  readonly prevs: readonly number[] | "other";
  readonly next: number;
}

export interface ScriptPlan {
  /** The script as token ids, in emission order. */
  readonly tokens: readonly number[];
  readonly embeddingLength: number;
  /** Current tokens whose successor depends on the previous token (each costs FFN units). */
  readonly contextDependentTokens: readonly number[];
}

const HEAD_DIM = 32;
const ROPE_FREQ_BASE = 2;
/** q/k norm weight magnitude: the previous position out-scores any other by >= 48. */
const QK_AMPLITUDE = 8;
const GATE_WEIGHT = 8;
/** Value a firing FFN unit writes into its target's T dim (at least; up to ~1.5x). */
const UNIT_OUTPUT = 4;
const BIAS_TO_EOS = 20;
const LINEAR_WEIGHT = 48;
const TARGET_WEIGHT = 32;

interface Unit {
  readonly cur: number;
  readonly context: Context;
  /** For an "other" context: the previous tokens it must not match. */
  readonly excluded: readonly number[];
}

/** How one script picks each successor: linearly from the current token, or by FFN units. */
interface Rules {
  /** current token -> successor, for tokens with a single successor. */
  readonly linear: ReadonlyMap<number, number>;
  readonly units: readonly Unit[];
  /** Index of this script's first FFN unit among all units of the layout. */
  readonly firstUnit: number;
}

/**
 * Dimensions shared by one or more scripts: a LoRA pair lays out its base and adapter
 * scripts together, so the two differ only in the rules (FFN units and output.weight).
 */
interface Layout {
  readonly n: number;
  readonly heads: number;
  readonly dimC: ReadonlyMap<number, number>;
  readonly dimB: number;
  readonly dimP: ReadonlyMap<number, number>;
  readonly dimT: ReadonlyMap<number, number>;
  readonly scripts: readonly Rules[];
  readonly unitCount: number;
}

function loopIndex(loop: ScriptOptions["loop"], length: number): number | undefined {
  if (loop === undefined || loop === false) return undefined;
  const index = loop === true ? 0 : loop;
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new Error(`loop index ${index} is outside the script's ${length} tokens`);
  }
  return index;
}

function collectContexts(
  tokens: readonly number[],
  triggers: readonly number[],
  loop: number | undefined,
  eos: number,
): Map<number, Context[]> {
  const contexts = new Map<number, Context[]>();
  const add = (cur: number, context: Context): void => {
    const list = contexts.get(cur) ?? [];
    list.push(context);
    contexts.set(cur, list);
  };
  const nextOf = (k: number): number =>
    tokens[k + 1] ?? (loop === undefined ? eos : tokens[loop]!);

  for (const trigger of triggers) add(trigger, { prevs: "other", next: tokens[0] ?? eos });
  tokens.forEach((token, k) => add(token, { prevs: k === 0 ? triggers : [tokens[k - 1]!], next: nextOf(k) }));
  if (loop !== undefined) add(tokens[loop]!, { prevs: [tokens.at(-1)!], next: nextOf(loop) });
  return contexts;
}

function rules(contexts: ReadonlyMap<number, readonly Context[]>, firstUnit: number): Rules {
  const linear = new Map<number, number>();
  const units: Unit[] = [];
  for (const [cur, list] of contexts) {
    if (list.every((c) => c.next === list[0]!.next)) {
      linear.set(cur, list[0]!.next);
      continue;
    }
    const nextByPrev = new Map<number, number>();
    for (const context of list) {
      if (context.prevs === "other") continue;
      for (const prev of context.prevs) {
        if ((nextByPrev.get(prev) ?? context.next) !== context.next) {
          throw new Error(`token ${cur} after token ${prev} would need two different successors`);
        }
        nextByPrev.set(prev, context.next);
      }
    }
    const named = [...nextByPrev.keys()];
    for (const context of list) units.push({ cur, context, excluded: context.prevs === "other" ? named : [] });
  }
  return { linear, units, firstUnit };
}

function layout(scriptContexts: ReadonlyArray<ReadonlyMap<number, readonly Context[]>>): Layout {
  const scripts: Rules[] = [];
  let unitCount = 0;
  for (const contexts of scriptContexts) {
    const r = rules(contexts, unitCount);
    scripts.push(r);
    unitCount += r.units.length;
  }
  const allUnits = scripts.flatMap((r) => r.units);

  const dims = new Map<string, number>();
  const claim = (key: string): number => {
    if (!dims.has(key)) dims.set(key, dims.size);
    return dims.get(key)!;
  };
  const dimC = new Map<number, number>();
  for (const contexts of scriptContexts) for (const t of contexts.keys()) dimC.set(t, claim(`C${t}`));
  const dimB = claim("B");
  const dimP = new Map<number, number>();
  const dimT = new Map<number, number>();
  for (const unit of allUnits) {
    const prevs = unit.context.prevs === "other" ? unit.excluded : unit.context.prevs;
    for (const prev of prevs) dimP.set(prev, claim(`P${prev}`));
  }
  for (const unit of allUnits) dimT.set(unit.context.next, claim(`T${unit.context.next}`));

  return {
    n: Math.ceil(dims.size / 32) * 32,
    heads: Math.max(1, Math.ceil(dimP.size / HEAD_DIM)),
    dimC,
    dimB,
    dimP,
    dimT,
    scripts,
    unitCount,
  };
}

interface Script {
  readonly tokens: readonly number[];
  readonly contexts: Map<number, Context[]>;
}

function script(options: Omit<ScriptOptions, "weightType">, eos: number): Script {
  const vocab = loadQwen3Vocab();
  const triggers = options.triggers ?? DEFAULT_TRIGGER_TOKENS;
  if (triggers.length === 0) throw new Error("a scripted model needs at least one trigger token");
  if (triggers.includes(eos)) throw new Error("<|im_end|> cannot be a trigger");
  const tokens = segmentScript(options.segments, vocab, triggers, new Set([eos]));
  const loop = loopIndex(options.loop, tokens.length);
  return { tokens, contexts: collectContexts(tokens, triggers, loop, eos) };
}

export function planScript(options: ScriptOptions): ScriptPlan {
  const s = script(options, loadQwen3Vocab().eosId);
  const l = layout([s.contexts]);
  return {
    tokens: s.tokens,
    embeddingLength: l.n,
    contextDependentTokens: [...new Set(l.scripts[0]!.units.map((u) => u.cur))],
  };
}

function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Fill for a [cols, rows] matrix given as a sparse map row -> (col -> value). */
function sparse(cols: number, entries: ReadonlyMap<number, ReadonlyMap<number, number>>): Fill {
  return (out, firstRow) => {
    for (let row = 0; row < out.length / cols; row++) {
      for (const [col, value] of entries.get(firstRow + row) ?? []) out[row * cols + col] = value;
    }
  };
}

function setEntry(map: Map<number, Map<number, number>>, row: number, col: number, value: number): void {
  const cols = map.get(row) ?? new Map<number, number>();
  cols.set(col, (cols.get(col) ?? 0) + value);
  map.set(row, cols);
}

/** NEOX RoPE pairs dim j with j + d/2 at angle pos * base^(-2j/d); see the file comment. */
function qkNorms(): { q: Float32Array; k: Float32Array } {
  const half = HEAD_DIM / 2;
  const q = new Float32Array(HEAD_DIM);
  const k = new Float32Array(HEAD_DIM);
  for (let j = 0; j < half; j++) {
    const theta = Math.pow(ROPE_FREQ_BASE, (-2 * j) / HEAD_DIM);
    q[j] = QK_AMPLITUDE * Math.cos(theta);
    q[j + half] = -QK_AMPLITUDE * Math.sin(theta);
    k[j] = QK_AMPLITUDE;
  }
  return { q, k };
}

type SparseMatrix = Map<number, Map<number, number>>;

/** The tensors whose weights depend on the script: what a LoRA adapter changes. */
const RULE_TENSORS = ["blk.0.ffn_gate.weight", "blk.0.ffn_down.weight", "output.weight"] as const;
type RuleTensor = (typeof RULE_TENSORS)[number];

/** FFN units and output.weight for one script of the layout; the other scripts' units stay silent. */
function ruleWeights(l: Layout, r: Rules, eos: number): Record<RuleTensor, SparseMatrix> {
  const { n, dimC, dimB, dimP, dimT } = l;
  // FFN input after RMS norm: every set entry equals sqrt(n/k) for k set entries (k <= 3).
  const weakest = Math.sqrt(n / 3);
  const unitDown = UNIT_OUTPUT / (silu(0.5 * GATE_WEIGHT * weakest) * weakest);
  const gate: SparseMatrix = new Map();
  const down: SparseMatrix = new Map();
  r.units.forEach((unit, i) => {
    const u = r.firstUnit + i;
    setEntry(gate, u, dimC.get(unit.cur)!, GATE_WEIGHT);
    if (unit.context.prevs === "other") {
      for (const prev of unit.excluded) setEntry(gate, u, dimP.get(prev)!, -GATE_WEIGHT);
      setEntry(gate, u, dimB, -0.5 * GATE_WEIGHT);
    } else {
      for (const prev of unit.context.prevs) setEntry(gate, u, dimP.get(prev)!, GATE_WEIGHT);
      setEntry(gate, u, dimB, -1.5 * GATE_WEIGHT);
    }
    setEntry(down, dimT.get(unit.context.next)!, u, unitDown);
  });

  const output: SparseMatrix = new Map();
  setEntry(output, eos, dimB, BIAS_TO_EOS);
  for (const [cur, next] of r.linear) setEntry(output, next, dimC.get(cur)!, LINEAR_WEIGHT);
  for (const [target, dim] of dimT) setEntry(output, target, dim, TARGET_WEIGHT);
  return { "blk.0.ffn_gate.weight": gate, "blk.0.ffn_down.weight": down, "output.weight": output };
}

/** The base model of a layout, running the layout's first script. */
function layoutModel(l: Layout, eos: number, weightType: WeightType): GgufFile {
  const { n, heads, dimC, dimB, dimP } = l;
  const qkDims = heads * HEAD_DIM;
  const ffDims = ffnLength(l);

  const embedding = new Map<number, Map<number, number>>();
  for (const [token, dim] of dimC) setEntry(embedding, token, dim, 1);
  const tokenEmbedding: Fill = (out, firstRow) => {
    for (let row = 0; row < out.length / n; row++) out[row * n + dimB] = 1;
    sparse(n, embedding)(out, firstRow);
  };

  // A source token's attention input is B + C normalized: its C entry is sqrt(n/2).
  const sourceScale = Math.sqrt(n / 2);
  const qk = new Map<number, Map<number, number>>();
  for (let row = 0; row < qkDims; row++) setEntry(qk, row, dimB, 1);
  const v = new Map<number, Map<number, number>>();
  const o = new Map<number, Map<number, number>>();
  [...dimP].forEach(([token, dim], slot) => {
    setEntry(v, slot, dimC.get(token)!, 1);
    setEntry(o, dim, slot, 1 / sourceScale);
  });

  // Every unit of every script reads the bias through up; a unit whose gate is zero stays silent.
  const up = new Map<number, Map<number, number>>();
  for (let u = 0; u < l.unitCount; u++) setEntry(up, u, dimB, 1);
  const rule = ruleWeights(l, l.scripts[0]!, eos);

  const matrices: Record<string, Fill> = {
    "blk.0.attn_q.weight": sparse(n, qk),
    "blk.0.attn_k.weight": sparse(n, qk),
    "blk.0.attn_v.weight": sparse(n, v),
    "blk.0.attn_output.weight": sparse(qkDims, o),
    "blk.0.ffn_gate.weight": sparse(n, rule["blk.0.ffn_gate.weight"]),
    "blk.0.ffn_up.weight": sparse(n, up),
    "blk.0.ffn_down.weight": sparse(ffDims, rule["blk.0.ffn_down.weight"]),
  };
  const { q, k } = qkNorms();
  const norms: Record<string, Fill> = {
    "blk.0.attn_q_norm.weight": (out) => out.set(q),
    "blk.0.attn_k_norm.weight": (out) => out.set(k),
  };

  const shape: Qwen3Shape = {
    blockCount: 1,
    contextLength: 4096,
    embeddingLength: n,
    feedForwardLength: ffDims,
    headCount: heads,
    headCountKv: heads,
    headDim: HEAD_DIM,
    ropeFreqBase: ROPE_FREQ_BASE,
    rmsNormEps: 1e-6,
    tiedEmbeddings: false,
  };
  return qwen3Model({
    name: "synthetic-scripted",
    shape,
    weightType,
    weights: {
      tokenEmbedding,
      output: sparse(n, rule["output.weight"]),
      matrix: (name) => {
        const fill = matrices[name];
        if (!fill) throw new Error(`scripted model has no weights for ${name}`);
        return fill;
      },
      norm: (name) => norms[name] ?? ((out) => out.fill(1)),
    },
  });
}

function ffnLength(l: Layout): number {
  return Math.max(32, Math.ceil(l.unitCount / 32) * 32);
}

export function scriptedQwen3Model(options: ScriptOptions): GgufFile {
  const eos = loadQwen3Vocab().eosId;
  return layoutModel(layout([script(options, eos).contexts]), eos, options.weightType ?? "q8_0");
}

/** `after - before`, without the entries that cancel. */
function difference(before: SparseMatrix, after: SparseMatrix): SparseMatrix {
  const out: SparseMatrix = new Map();
  for (const [row, cols] of after) for (const [col, value] of cols) setEntry(out, row, col, value);
  for (const [row, cols] of before) for (const [col, value] of cols) setEntry(out, row, col, -value);
  for (const [row, cols] of out) {
    for (const [col, value] of cols) if (value === 0) cols.delete(col);
    if (cols.size === 0) out.delete(row);
  }
  return out;
}

/**
 * A LoRA pair: a base model that replies `base`'s script and an adapter GGUF that makes it
 * reply `adapter`'s script instead. Both scripts share one layout (dimensions for the tokens
 * of either), so the adapter only has to change the FFN units and output.weight: for each such
 * tensor W it holds delta = W(adapter script) - W(base script), factored exactly as
 * lora_b x lora_a with lora_a picking the input columns the delta uses (llama.cpp's layouts:
 * lora_a [n_in, r], lora_b [r, n_out]). One rank r for every tensor and alpha = r make
 * llama.cpp's scale alpha / r = 1, so at scale 1 base + adapter is the adapter script's model.
 */
export function scriptedLoraPair(
  base: ScriptOptions,
  adapter: Omit<ScriptOptions, "weightType">,
): { model: GgufFile; adapter: GgufFile } {
  const eos = loadQwen3Vocab().eosId;
  const l = layout([script(base, eos).contexts, script(adapter, eos).contexts]);
  const before = ruleWeights(l, l.scripts[0]!, eos);
  const after = ruleWeights(l, l.scripts[1]!, eos);
  const inputs: Record<RuleTensor, number> = { "blk.0.ffn_gate.weight": l.n, "blk.0.ffn_down.weight": ffnLength(l), "output.weight": l.n };
  const outputs: Record<RuleTensor, number> = { "blk.0.ffn_gate.weight": ffnLength(l), "blk.0.ffn_down.weight": l.n, "output.weight": QWEN3_VOCAB_SIZE };
  const deltas = RULE_TENSORS.map((name) => {
    const delta = difference(before[name], after[name]);
    const columns = [...new Set([...delta.values()].flatMap((cols) => [...cols.keys()]))].sort((a, b) => a - b);
    return { name, delta, columns };
  }).filter((d) => d.columns.length > 0);
  const rank = Math.max(1, ...deltas.map((d) => d.columns.length));

  const tensors: GgufTensor[] = deltas.flatMap(({ name, delta, columns }) => {
    const nIn = inputs[name];
    const nOut = outputs[name];
    const pick: Fill = (out, firstRow) => {
      for (let row = firstRow; row < Math.min(columns.length, firstRow + out.length / nIn); row++) {
        out[(row - firstRow) * nIn + columns[row]!] = 1;
      }
    };
    const at = new Map(columns.map((col, k) => [col, k]));
    const values: Fill = (out, firstRow) => {
      for (let row = 0; row < out.length / rank; row++) {
        for (const [col, value] of delta.get(firstRow + row) ?? []) out[row * rank + at.get(col)!] = value;
      }
    };
    return [
      { name: `${name}.lora_a`, dims: [nIn, rank], type: GgmlType.F32, fill: pick },
      { name: `${name}.lora_b`, dims: [rank, nOut], type: GgmlType.F16, fill: values },
    ];
  });
  return {
    model: layoutModel(l, eos, base.weightType ?? "q8_0"),
    adapter: {
      metadata: [
        ["general.architecture", gguf.string("qwen3")],
        ["general.type", gguf.string("adapter")],
        ["general.name", gguf.string("synthetic-scripted-lora")],
        ["adapter.type", gguf.string("lora")],
        ["adapter.lora.alpha", gguf.f32(rank)],
      ],
      tensors,
    },
  };
}
