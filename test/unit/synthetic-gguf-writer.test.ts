import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gguf, writeGguf, type GgufFile, type GgufTensor } from "../../src/models/synthetic/gguf-writer.js";
import { GgmlType, byteSize, encode } from "../../src/models/synthetic/quantize.js";

/** Deterministic, non-trivial values: element i of the whole tensor is f(i). */
function ramp(cols: number): { fill: GgufTensor["fill"]; values(count: number): Float32Array } {
  const at = (i: number): number => Math.sin(i * 0.37) * 0.5;
  return {
    fill(out, firstRow) {
      for (let i = 0; i < out.length; i++) out[i] = at(firstRow * cols + i);
    },
    values(count) {
      return Float32Array.from({ length: count }, (_, i) => at(i));
    },
  };
}

// 32 x 40000 = 1.28M elements: more than one 1M-element chunk, so streaming is exercised.
const big = ramp(32);
const tensors: GgufTensor[] = [
  { name: "norm.weight", dims: [8], type: GgmlType.F32, fill: (out) => out.fill(1) },
  { name: "half.weight", dims: [64, 3], type: GgmlType.F16, fill: ramp(64).fill },
  { name: "big.weight", dims: [32, 40000], type: GgmlType.Q8_0, fill: big.fill },
  { name: "q4.weight", dims: [64, 2, 2], type: GgmlType.Q4_0, fill: ramp(64).fill },
];
const file: GgufFile = {
  metadata: [
    ["general.architecture", gguf.string("test")],
    ["test.u8", gguf.u8(250)],
    ["test.i8", gguf.i8(-7)],
    ["test.u16", gguf.u16(65000)],
    ["test.i16", gguf.i16(-3000)],
    ["test.u32", gguf.u32(4_000_000_000)],
    ["test.i32", gguf.i32(-2_000_000_000)],
    ["test.f32", gguf.f32(1e-6)],
    ["test.f64", gguf.f64(Math.PI)],
    ["test.u64", gguf.u64(2n ** 40n)],
    ["test.i64", gguf.i64(-(2n ** 40n))],
    ["test.bool", gguf.bool(true)],
    ["test.string", gguf.string("héllo {{ jinja }}\n")],
    ["test.strings", gguf.strings(["a", "Ġb", "", "🦙"])],
    ["test.ints", gguf.numbers("i32", Int32Array.from([1, -2, 3]))],
    ["test.floats", gguf.numbers("f32", [0.5, 0.25])],
    ["test.bools", gguf.bools([true, false])],
  ],
  tensors,
};

describe("GGUF writer", () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "gguf-writer-"));
    path = join(dir, "test.gguf");
    await writeGguf(path, file);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("round-trips every metadata value type through node-llama-cpp's reader", async () => {
    const info = await readGgufFileInfo(path);
    expect(info.version).toBe(3);
    const m = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(m.general).toEqual({ architecture: "test" });
    const t = m.test!;
    expect(t.u8).toBe(250);
    expect(t.i8).toBe(-7);
    expect(t.u16).toBe(65000);
    expect(t.i16).toBe(-3000);
    expect(t.u32).toBe(4_000_000_000);
    expect(t.i32).toBe(-2_000_000_000);
    expect(t.f32).toBeCloseTo(1e-6, 12);
    expect(t.f64).toBe(Math.PI);
    expect(BigInt(t.u64 as bigint)).toBe(2n ** 40n);
    expect(BigInt(t.i64 as bigint)).toBe(-(2n ** 40n));
    expect(t.bool).toBe(true);
    expect(t.string).toBe("héllo {{ jinja }}\n");
    expect(t.strings).toEqual(["a", "Ġb", "", "🦙"]);
    expect(t.ints).toEqual([1, -2, 3]);
    expect(t.floats).toEqual([0.5, 0.25]);
    expect(t.bools).toEqual([true, false]);
  });

  it("writes tensor infos with ggml dims and 32-byte aligned offsets", async () => {
    const info = await readGgufFileInfo(path);
    const infos = info.tensorInfo!;
    expect(infos.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType])).toEqual(
      tensors.map((t) => [t.name, [...t.dims], t.type]),
    );
    for (const t of infos) {
      expect(Number(t.offset) % 32).toBe(0);
      expect(Number(t.fileOffset) % 32).toBe(0);
    }
    const last = tensors.at(-1)!;
    const lastSize = byteSize(last.type, last.dims.reduce((a, b) => a * b));
    const bytes = await readFile(path);
    expect(bytes.length).toBe(Number(infos.at(-1)!.fileOffset) + Math.ceil(lastSize / 32) * 32);
  });

  it("streams tensor data chunk by chunk to the same bytes as encoding it at once", async () => {
    const info = await readGgufFileInfo(path);
    const bytes = await readFile(path);
    const bigInfo = info.tensorInfo!.find((t) => t.name === "big.weight")!;
    const expected = new Uint8Array(byteSize(GgmlType.Q8_0, 32 * 40000));
    encode(GgmlType.Q8_0, big.values(32 * 40000), expected);
    const start = Number(bigInfo.fileOffset);
    expect(Buffer.compare(bytes.subarray(start, start + expected.length), expected)).toBe(0);
  });

  it("rejects invalid files before writing", async () => {
    const bad = (patch: Partial<GgufFile>): Promise<void> => writeGguf(join(dir, "bad.gguf"), { ...file, ...patch });
    await expect(bad({ metadata: [["x", gguf.u8(1)]] })).rejects.toThrow(/general.architecture/);
    await expect(bad({ metadata: [...file.metadata, ["test.u8", gguf.u8(1)]] })).rejects.toThrow(/duplicate/);
    await expect(bad({ tensors: [{ ...tensors[2]!, dims: [48, 2] }] })).rejects.toThrow(/multiple of the block size/);
    await expect(bad({ metadata: [...file.metadata, ["test.empty", gguf.strings([])]] })).rejects.toThrow(/empty/);
  });
});
