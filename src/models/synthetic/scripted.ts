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
import type { GgufFile } from "./gguf-writer.js";
import type { WeightType } from "./quantize.js";
import { qwen3Model, type Fill, type Qwen3Shape } from "./qwen3.js";
import { loadQwen3Vocab } from "./qwen3-vocab.js";
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

interface Layout {
  readonly n: number;
  readonly heads: number;
  readonly dimC: ReadonlyMap<number, number>;
  readonly dimB: number;
  readonly dimP: ReadonlyMap<number, number>;
  readonly dimT: ReadonlyMap<number, number>;
  /** current token -> successor, for tokens with a single successor. */
  readonly linear: ReadonlyMap<number, number>;
  readonly units: readonly Unit[];
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

function layout(contexts: ReadonlyMap<number, readonly Context[]>): Layout {
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

  const dims = new Map<string, number>();
  const claim = (key: string): number => {
    if (!dims.has(key)) dims.set(key, dims.size);
    return dims.get(key)!;
  };
  const dimC = new Map([...contexts.keys()].map((t) => [t, claim(`C${t}`)]));
  const dimB = claim("B");
  const dimP = new Map<number, number>();
  const dimT = new Map<number, number>();
  for (const unit of units) {
    const prevs = unit.context.prevs === "other" ? unit.excluded : unit.context.prevs;
    for (const prev of prevs) dimP.set(prev, claim(`P${prev}`));
  }
  for (const unit of units) dimT.set(unit.context.next, claim(`T${unit.context.next}`));

  return {
    n: Math.ceil(dims.size / 32) * 32,
    heads: Math.max(1, Math.ceil(dimP.size / HEAD_DIM)),
    dimC,
    dimB,
    dimP,
    dimT,
    linear,
    units,
  };
}

function plan(options: ScriptOptions) {
  const vocab = loadQwen3Vocab();
  const triggers = options.triggers ?? DEFAULT_TRIGGER_TOKENS;
  if (triggers.length === 0) throw new Error("a scripted model needs at least one trigger token");
  if (triggers.includes(vocab.eosId)) throw new Error("<|im_end|> cannot be a trigger");
  const tokens = segmentScript(options.segments, vocab, triggers, new Set([vocab.eosId]));
  const loop = loopIndex(options.loop, tokens.length);
  return { tokens, eos: vocab.eosId, layout: layout(collectContexts(tokens, triggers, loop, vocab.eosId)) };
}

export function planScript(options: ScriptOptions): ScriptPlan {
  const { tokens, layout: l } = plan(options);
  return {
    tokens,
    embeddingLength: l.n,
    contextDependentTokens: [...new Set(l.units.map((u) => u.cur))],
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

export function scriptedQwen3Model(options: ScriptOptions): GgufFile {
  const { eos, layout: l } = plan(options);
  const { n, heads, dimC, dimB, dimP, dimT } = l;
  const qkDims = heads * HEAD_DIM;
  const ffDims = Math.max(32, Math.ceil(l.units.length / 32) * 32);

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

  // FFN input after RMS norm: every set entry equals sqrt(n/k) for k set entries (k <= 3).
  const weakest = Math.sqrt(n / 3);
  const unitDown = UNIT_OUTPUT / (silu(0.5 * GATE_WEIGHT * weakest) * weakest);
  const gate = new Map<number, Map<number, number>>();
  const up = new Map<number, Map<number, number>>();
  const down = new Map<number, Map<number, number>>();
  l.units.forEach((unit, u) => {
    setEntry(gate, u, dimC.get(unit.cur)!, GATE_WEIGHT);
    if (unit.context.prevs === "other") {
      for (const prev of unit.excluded) setEntry(gate, u, dimP.get(prev)!, -GATE_WEIGHT);
      setEntry(gate, u, dimB, -0.5 * GATE_WEIGHT);
    } else {
      for (const prev of unit.context.prevs) setEntry(gate, u, dimP.get(prev)!, GATE_WEIGHT);
      setEntry(gate, u, dimB, -1.5 * GATE_WEIGHT);
    }
    setEntry(up, u, dimB, 1);
    setEntry(down, dimT.get(unit.context.next)!, u, unitDown);
  });

  const output = new Map<number, Map<number, number>>();
  setEntry(output, eos, dimB, BIAS_TO_EOS);
  for (const [cur, next] of l.linear) setEntry(output, next, dimC.get(cur)!, LINEAR_WEIGHT);
  for (const [target, dim] of dimT) setEntry(output, target, dim, TARGET_WEIGHT);

  const matrices: Record<string, Fill> = {
    "blk.0.attn_q.weight": sparse(n, qk),
    "blk.0.attn_k.weight": sparse(n, qk),
    "blk.0.attn_v.weight": sparse(n, v),
    "blk.0.attn_output.weight": sparse(qkDims, o),
    "blk.0.ffn_gate.weight": sparse(n, gate),
    "blk.0.ffn_up.weight": sparse(n, up),
    "blk.0.ffn_down.weight": sparse(ffDims, down),
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
    weightType: options.weightType ?? "q8_0",
    weights: {
      tokenEmbedding,
      output: sparse(n, output),
      matrix: (name) => {
        const fill = matrices[name];
        if (!fill) throw new Error(`scripted model has no weights for ${name}`);
        return fill;
      },
      norm: (name) => norms[name] ?? ((out) => out.fill(1)),
    },
  });
}
