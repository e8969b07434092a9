/**
 * The node-llama-cpp addon's internal objects the engine calls directly (its context and sampler
 * bindings), typed here once for the round decoder and the logprob reader.
 */
export interface NativeSampler {
  applyConfig(config: Record<string, unknown>): void;
  dispose(): void;
}

/** [filter tokens, include highest, include lowest, include selected, include top n] */
type LogitsFilter = [number[], boolean, boolean, boolean, number];
type SampleResult = [number, unknown, unknown, number[] | undefined, number | undefined];

export interface NativeContext {
  initBatch(tokens: number): void;
  addToBatch(sequenceId: number, firstTokenIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: NativeSampler): Promise<number>;
  sampleToken(
    batchLogitIndex: number,
    sampler: NativeSampler,
    probabilities: boolean,
    confidence: boolean,
    logits: LogitsFilter,
    totalLogitWeight: boolean,
  ): Promise<SampleResult>;
  /** The edgellm patch: [tokens (-1: none), log-probabilities per sampler, decode us, sample us]. */
  decodeAndSampleBatch?(
    samplers: NativeSampler[],
    logitIndexes: Int32Array,
    logprobTop: Int32Array,
  ): Promise<[Int32Array, Array<Float32Array | undefined>, number, number]>;
}
