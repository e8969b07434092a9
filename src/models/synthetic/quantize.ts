/**
 * Tensor encoders matching ggml's reference quantization (ggml-quants.c `quantize_row_*_ref`),
 * which is what llama.cpp's own quantizer uses for q8_0 and for q4_0 without an importance matrix.
 *
 * ggml does all of this in float32; every intermediate here goes through Math.fround so
 * the bytes are identical, not merely close. Inputs must be finite (ggml's own result for
 * NaN/Inf is undefined behaviour in C).
 */

/** GGML tensor types this generator can emit (values are ggml_type ids). */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Weight types a synthetic model can be written in (norm weights always stay f32). */
export type WeightType = "f16" | "q8_0" | "q4_0";

const QK = 32;

interface TypeLayout {
  /** Elements per block. */
  readonly blockElems: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

const LAYOUTS: Record<GgmlType, TypeLayout> = {
  [GgmlType.F32]: { blockElems: 1, blockBytes: 4 },
  [GgmlType.F16]: { blockElems: 1, blockBytes: 2 },
  [GgmlType.Q4_0]: { blockElems: QK, blockBytes: 2 + QK / 2 },
  [GgmlType.Q8_0]: { blockElems: QK, blockBytes: 2 + QK },
};

export function weightGgmlType(type: WeightType): GgmlType {
  switch (type) {
    case "f16":
      return GgmlType.F16;
    case "q8_0":
      return GgmlType.Q8_0;
    case "q4_0":
      return GgmlType.Q4_0;
  }
}

/** Bytes taken by `elems` consecutive elements (a row, or a whole tensor) of `type`. */
export function byteSize(type: GgmlType, elems: number): number {
  const { blockElems, blockBytes } = LAYOUTS[type];
  if (elems % blockElems !== 0) {
    throw new Error(`${elems} elements is not a whole number of ${blockElems}-element blocks (ggml type ${type})`);
  }
  return (elems / blockElems) * blockBytes;
}

export function blockElems(type: GgmlType): number {
  return LAYOUTS[type].blockElems;
}

/**
 * float32 -> IEEE half, round to nearest even, NaN -> quiet NaN: the same results as
 * ggml_compute_fp32_to_fp16. `bits` must be the float32 bit pattern of `value`.
 */
export function fp32ToFp16(value: number, bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00);
  // 65520 is the first float32 that rounds past the largest half (65504).
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    // Half subnormal range: the result is |value| in units of 2^-24, rounded half to even.
    // (A result of 1024 is correctly the smallest normal half.)
    const scaled = Math.abs(value) * 16777216;
    let r = Math.floor(scaled);
    const rest = scaled - r;
    if (rest > 0.5 || (rest === 0.5 && (r & 1) === 1)) r++;
    return sign | r;
  }
  // Re-bias the exponent (127 -> 15) and round the 13 dropped mantissa bits half to even;
  // a mantissa carry correctly bumps the exponent.
  const rebased = abs - 0x38000000;
  return sign | ((rebased + 0xfff + ((rebased >>> 13) & 1)) >>> 13);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function fp16Of(value: number): number {
  scratchF32[0] = value;
  return fp32ToFp16(scratchF32[0], scratchU32[0]!);
}

function encodeF32(src: Float32Array, dst: Uint8Array): void {
  dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

function encodeF16(src: Float32Array, dst: Uint8Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  for (let i = 0; i < src.length; i++) {
    view.setUint16(i * 2, fp32ToFp16(src[i]!, bits[i]!), true);
  }
}

function encodeQ8_0(src: Float32Array, dst: Uint8Array): void {
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  const qs = new Int8Array(dst.buffer, dst.byteOffset, dst.byteLength);
  const blocks = src.length / QK;
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const a = Math.abs(src[base + j]!);
      // Same operand order as ggml's MAX(a, b) macro, so a NaN behaves identically.
      amax = amax > a ? amax : a;
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const out = b * (QK + 2);
    view.setUint16(out, fp16Of(d), true);
    for (let j = 0; j < QK; j++) {
      // roundf (halves away from zero) without a data-dependent branch, which mispredicts
      // on random weights and triples the cost: shift |v| <= 127 to positive, truncate,
      // and fix up exact negative halves (w integral), which half-up rounding gets wrong.
      const v = Math.fround(src[base + j]! * id);
      const w = v + 128.5;
      const f = w | 0;
      qs[out + 2 + j] = f === w && v < 0 ? f - 129 : f - 128;
    }
  }
}

function encodeQ4_0(src: Float32Array, dst: Uint8Array): void {
  const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
  const blocks = src.length / QK;
  const half = QK / 2;
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    // ggml keeps the signed value of largest magnitude (first one wins on ties) so that
    // it maps exactly onto -8, the end of the nibble range with the extra step.
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = src[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const out = b * (half + 2);
    view.setUint16(out, fp16Of(d), true);
    for (let j = 0; j < half; j++) {
      const lo = Math.min(15, Math.trunc(Math.fround(Math.fround(src[base + j]! * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(Math.fround(Math.fround(src[base + half + j]! * id) + 8.5)));
      dst[out + 2 + j] = lo | (hi << 4);
    }
  }
}

/**
 * Encodes `src` (a whole number of blocks) into `dst`, which must hold exactly
 * byteSize(type, src.length) bytes.
 */
export function encode(type: GgmlType, src: Float32Array, dst: Uint8Array): void {
  if (dst.length !== byteSize(type, src.length)) {
    throw new Error(`encode: destination holds ${dst.length} bytes, need ${byteSize(type, src.length)}`);
  }
  switch (type) {
    case GgmlType.F32:
      return encodeF32(src, dst);
    case GgmlType.F16:
      return encodeF16(src, dst);
    case GgmlType.Q8_0:
      return encodeQ8_0(src, dst);
    case GgmlType.Q4_0:
      return encodeQ4_0(src, dst);
  }
}
