/**
 * Splits a script into Qwen3 token ids for a scripted model, which picks each next token from
 * the (previous, current) token pair alone. So no pair may occur twice in the script. This
 * searches for such a segmentation (longest tokens first, backtracking) instead of using the
 * BPE tokenizer, whose output may well repeat a pair.
 */
import { toByteLevel, type Qwen3Vocab } from "./qwen3-vocab.js";

/** Plain text, or one added token emitted as its single id (e.g. `{ token: "<think>" }`). */
export type ScriptSegment = string | { readonly token: string };

/** Enough for any realistic script; stops pathological inputs from searching forever. */
const SEARCH_BUDGET = 100_000;

interface Candidate {
  readonly length: number;
  readonly id: number;
}

interface Atoms {
  /** Per atom (byte-level character, or one added token): the tokens that can start there, longest first. */
  readonly candidates: readonly (readonly Candidate[])[];
  /** For error messages: what each atom spells. */
  readonly text: readonly string[];
}

/**
 * Flattens the script into atoms. Adjacent text segments form one run, so tokens may span
 * their boundary but never an added token.
 */
function toAtoms(segments: readonly ScriptSegment[], vocab: Qwen3Vocab, forbidden: ReadonlySet<number>): Atoms {
  const candidates: Candidate[][] = [];
  const text: string[] = [];
  let run = "";
  const flushRun = (): void => {
    for (let pos = 0; pos < run.length; pos++) {
      const here: Candidate[] = [];
      for (let length = Math.min(vocab.maxNormalTokenLength, run.length - pos); length > 0; length--) {
        const id = vocab.normalIds.get(run.slice(pos, pos + length));
        if (id !== undefined && !forbidden.has(id)) here.push({ length, id });
      }
      candidates.push(here);
      text.push(run[pos]!);
    }
    run = "";
  };
  for (const segment of segments) {
    if (typeof segment === "string") {
      run += toByteLevel(segment);
      continue;
    }
    flushRun();
    const id = vocab.addedIds.get(segment.token);
    if (id === undefined) {
      throw new Error(`script token ${JSON.stringify(segment.token)} is not an added token of the Qwen3 vocab`);
    }
    if (forbidden.has(id)) throw new Error(`script token ${segment.token} cannot be scripted (it is EOS)`);
    candidates.push([{ length: 1, id }]);
    text.push(segment.token);
  }
  flushRun();
  return { candidates, text };
}

/** Token ids are < 2^18, so this packs a pair into one exactly representable number. */
function pairKey(prev: number, cur: number): number {
  return prev * 262144 + cur;
}

/**
 * Token ids spelling `segments`, none from `forbidden`, such that no (previous, current) pair
 * repeats; the first token's predecessors are all of `triggers`. Prefers long tokens.
 */
export function segmentScript(
  segments: readonly ScriptSegment[],
  vocab: Qwen3Vocab,
  triggers: readonly number[],
  forbidden: ReadonlySet<number>,
): number[] {
  const { candidates, text } = toAtoms(segments, vocab, forbidden);
  const end = candidates.length;
  const usedPairs = new Set<number>();
  const ids: number[] = [];
  let steps = 0;
  let furthest = 0;

  const search = (pos: number): boolean => {
    if (pos === end) return true;
    furthest = Math.max(furthest, pos);
    const prevs = pos === 0 ? triggers : [ids.at(-1)!];
    for (const { length, id } of candidates[pos]!) {
      const keys = prevs.map((prev) => pairKey(prev, id));
      if (keys.some((key) => usedPairs.has(key))) continue;
      if (++steps > SEARCH_BUDGET) {
        throw new Error(`gave up segmenting the script after ${SEARCH_BUDGET} steps; make it shorter or less repetitive`);
      }
      for (const key of keys) usedPairs.add(key);
      ids.push(id);
      if (search(pos + length)) return true;
      ids.pop();
      for (const key of keys) usedPairs.delete(key);
    }
    return false;
  };

  if (!search(0)) {
    throw new Error(
      `cannot spell the script without repeating a (previous, current) token pair: stuck at ` +
        `${JSON.stringify(text.slice(furthest, furthest + 20).join(""))} (byte-level)`,
    );
  }
  return ids;
}
