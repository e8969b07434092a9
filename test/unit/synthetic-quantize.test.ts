import { describe, expect, it } from "vitest";
import { GgmlType, byteSize, encode } from "../../src/models/synthetic/quantize.js";

/**
 * Six 32-element blocks: mixed signs, exact .5 ties at scale 1 (roundf vs banker's rounding),
 * an all-zero block (d = 0), a negative extreme (q4_0 keeps the sign of the largest value),
 * values whose scale is an f16 subnormal, and pseudo-random weights.
 */
function testVector(): Float32Array {
  const v = new Float32Array(6 * 32);
  for (let i = 0; i < 32; i++) v[i] = (((i * 37) % 101) - 50) / 16;
  const ties = [127, 2.5, -2.5, 0.5, -0.5, 1.5, -126.5, 63.5, -63.5, 3.5];
  for (let i = 0; i < 32; i++) v[32 + i] = ties[i % ties.length]!;
  for (let i = 0; i < 32; i++) v[96 + i] = i === 7 ? -3 : ((i % 7) - 3) / 4;
  for (let i = 0; i < 32; i++) v[128 + i] = (i - 16) * 1e-7;
  let x = 12345;
  for (let i = 0; i < 32; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    v[160 + i] = Math.fround(((x >>> 8) / 16777216 - 0.5) * 0.1);
  }
  return v;
}

/** f16 edge cases: overflow boundary, infinities, NaN, subnormals and their ties, rounding ties. */
const F16_EDGES = new Float32Array([
  0, -0, 1, -1, 65504, 65519, 65520, 1e6, Infinity, -Infinity, NaN, 5.960464477539063e-8, 2.9802322387695312e-8,
  2.980232594040899e-8, 8.940696716308594e-8, 6.097555160522461e-5, 6.103515625e-5, 0.1, 0.2, 0.3, 1 / 3, 2049, 2051,
  4095, -7.62939453125e-6, 1.00048828125, 1.000732421875, 1.0009765625, 3.14159, -2.71828, 1e-10, 0.000123,
]);

// Produced by ggml itself: GGML_FP32_TO_FP16, quantize_row_q8_0_ref and quantize_row_q4_0_ref
// from ggml/src/ggml-quants.c (the llama.cpp revision node-llama-cpp 3.22.1 builds), fed the
// vectors above.
const GGML_REFERENCE = {
  f16: [
    "40c280ba003e00c100b2404080bf0037804100bd403ce0c100b9c03ea0c00000a040c0be0039e04140bc003d80c100b7",
    "803f40c00032004100be803a404200bbf057004100c1003800b8003ee8d7f053f0d30043f057004100c1003800b8003e",
    "e8d7f053f0d30043f057004100c1003800b8003ee8d7f053f0d30043f057004100000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "00ba00b800b4000000340038003a00c200b800b4000000340038003a00ba00b800b4000000340038003a00ba00b800b4",
    "000000340038003a00ba00b800b400001b801980178016801480128011800f800d800c800a8008800780058003800280",
    "0000020003000500070008000a000c000d000f001100120014001600170019003128ce235228b7a99d2688a6b627bc24",
    "c2a8ca2477a06c207ea890a463a1fe902029f125e7a50128662295a343a332943624b4258928a9a26c204daa91a123aa",
  ].join(""),
  q8_0: [
    "4d2681df3d9af856b41270cd2b89e745a2005ebb1977d53390ee4caa0866c3217fdc003c7f03fd01ff028140c0047f03",
    "fd01ff028140c0047f03fd01ff028140c0047f0300000000000000000000000000000000000000000000000000000000",
    "0000000000000c26e0ebf5000b152081ebf5000b1520e0ebf5000b1520e0ebf5000b1520e0ebf500000081899199a1a9",
    "b1b9c0c8d0d8e0e8f0f8000810182028303840474f575f676f77590e5527578d43be4e30a030e916a5d2e5fe673cc551",
    "20dadbfd2a395bde1681e484",
  ].join(""),
  q4_0: [
    "4036e046acf258bd1379df358be046acf268f0cbf048c88808888f848c88f048c8880888008088888888888888888888",
    "888888888888003676879798a9697a70879798a9697a76870300809091a2a2b3b3c4c4d5d5e6e6f7f7f84d1efdca4dd1",
    "ac646d8bb2cbe76992056608",
  ].join(""),
  f16Edges: [
    "00000080003c00bcff7bff7b007c007c007c00fc007e0100000001000200ff030004662e6632cd34553500680268006c",
    "8080003c013c013c484270c100000808",
  ].join(""),
};

function encodeHex(type: GgmlType, values: Float32Array): string {
  const out = new Uint8Array(byteSize(type, values.length));
  encode(type, values, out);
  return Buffer.from(out).toString("hex");
}

describe("quantizers match ggml's reference implementation byte for byte", () => {
  it("f16", () => {
    expect(encodeHex(GgmlType.F16, testVector())).toBe(GGML_REFERENCE.f16);
    expect(encodeHex(GgmlType.F16, F16_EDGES)).toBe(GGML_REFERENCE.f16Edges);
  });

  it("q8_0", () => {
    expect(encodeHex(GgmlType.Q8_0, testVector())).toBe(GGML_REFERENCE.q8_0);
  });

  it("q4_0", () => {
    expect(encodeHex(GgmlType.Q4_0, testVector())).toBe(GGML_REFERENCE.q4_0);
  });

  it("f32 is the raw little-endian floats", () => {
    const v = testVector();
    expect(encodeHex(GgmlType.F32, v)).toBe(Buffer.from(v.buffer).toString("hex"));
  });
});

describe("tensor sizes", () => {
  it("uses ggml's block sizes", () => {
    expect(byteSize(GgmlType.F32, 64)).toBe(256);
    expect(byteSize(GgmlType.F16, 64)).toBe(128);
    expect(byteSize(GgmlType.Q8_0, 64)).toBe(68);
    expect(byteSize(GgmlType.Q4_0, 64)).toBe(36);
  });

  it("rejects partial blocks", () => {
    expect(() => byteSize(GgmlType.Q8_0, 48)).toThrow(/blocks/);
  });
});
