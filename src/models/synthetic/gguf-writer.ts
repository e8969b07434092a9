/**
 * Streaming GGUF v3 writer (format as read by ggml's gguf.cpp / written by gguf-py).
 *
 * Metadata and tensor infos are small and built in memory; tensor data is produced
 * chunk by chunk through each tensor's `fill` callback, encoded, and written straight to
 * the file, so memory stays bounded no matter how large the model is.
 */
import { open } from "node:fs/promises";
import { GgmlType, blockElems, byteSize, encode } from "./quantize.js";

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
/** GGUF's default alignment, so no general.alignment key is needed. */
const ALIGNMENT = 32;
/** GGML_MAX_NAME (64) including the terminating NUL. */
const MAX_TENSOR_NAME_BYTES = 63;
/** Float32 elements generated per chunk: 4 MiB of scratch regardless of tensor size. */
const CHUNK_ELEMS = 1 << 20;

/** gguf_type ids. */
const ValueType = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

type NumberType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
type BigIntType = "u64" | "i64";
export type GgufScalarType = NumberType | BigIntType | "bool" | "string";

export type GgufScalar =
  | { readonly type: NumberType; readonly value: number }
  | { readonly type: BigIntType; readonly value: bigint }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string };

export type GgufArray =
  | { readonly type: "array"; readonly itemType: NumberType; readonly values: ArrayLike<number> }
  | { readonly type: "array"; readonly itemType: BigIntType; readonly values: ArrayLike<bigint> }
  | { readonly type: "array"; readonly itemType: "bool"; readonly values: ArrayLike<boolean> }
  | { readonly type: "array"; readonly itemType: "string"; readonly values: ArrayLike<string> };

export type GgufValue = GgufScalar | GgufArray;

/** Constructors that pin down the on-disk type, which a JS number alone cannot. */
export const gguf = {
  u8: (value: number): GgufScalar => ({ type: "u8", value }),
  i8: (value: number): GgufScalar => ({ type: "i8", value }),
  u16: (value: number): GgufScalar => ({ type: "u16", value }),
  i16: (value: number): GgufScalar => ({ type: "i16", value }),
  u32: (value: number): GgufScalar => ({ type: "u32", value }),
  i32: (value: number): GgufScalar => ({ type: "i32", value }),
  f32: (value: number): GgufScalar => ({ type: "f32", value }),
  f64: (value: number): GgufScalar => ({ type: "f64", value }),
  u64: (value: bigint): GgufScalar => ({ type: "u64", value }),
  i64: (value: bigint): GgufScalar => ({ type: "i64", value }),
  bool: (value: boolean): GgufScalar => ({ type: "bool", value }),
  string: (value: string): GgufScalar => ({ type: "string", value }),
  numbers: (itemType: NumberType, values: ArrayLike<number>): GgufArray => ({ type: "array", itemType, values }),
  bigints: (itemType: BigIntType, values: ArrayLike<bigint>): GgufArray => ({ type: "array", itemType, values }),
  bools: (values: ArrayLike<boolean>): GgufArray => ({ type: "array", itemType: "bool", values }),
  strings: (values: ArrayLike<string>): GgufArray => ({ type: "array", itemType: "string", values }),
};

export interface GgufTensor {
  readonly name: string;
  /** ggml order: dims[0] is the contiguous row length (ne0), e.g. [n_embd, n_vocab] for token_embd. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /**
   * Writes float32 values for the rows starting at `firstRow` into `out` (pre-zeroed, a whole
   * number of rows). Called with consecutive row ranges, first to last, exactly once each.
   */
  fill(out: Float32Array, firstRow: number): void;
}

export interface GgufFile {
  readonly metadata: ReadonlyArray<readonly [string, GgufValue]>;
  readonly tensors: readonly GgufTensor[];
}

/** Little-endian append-only byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  private length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(grown, 0, 0, at);
      this.buf = grown;
    }
    this.length += n;
    return at;
  }

  // The offset is taken before touching this.buf: reserve() may swap in a bigger buffer.
  u8(v: number): void { const at = this.reserve(1); this.buf.writeUInt8(v, at); }
  i8(v: number): void { const at = this.reserve(1); this.buf.writeInt8(v, at); }
  u16(v: number): void { const at = this.reserve(2); this.buf.writeUInt16LE(v, at); }
  i16(v: number): void { const at = this.reserve(2); this.buf.writeInt16LE(v, at); }
  u32(v: number): void { const at = this.reserve(4); this.buf.writeUInt32LE(v, at); }
  i32(v: number): void { const at = this.reserve(4); this.buf.writeInt32LE(v, at); }
  f32(v: number): void { const at = this.reserve(4); this.buf.writeFloatLE(v, at); }
  f64(v: number): void { const at = this.reserve(8); this.buf.writeDoubleLE(v, at); }
  u64(v: bigint | number): void { const at = this.reserve(8); this.buf.writeBigUInt64LE(BigInt(v), at); }
  i64(v: bigint): void { const at = this.reserve(8); this.buf.writeBigInt64LE(v, at); }

  string(s: string): void {
    const len = Buffer.byteLength(s, "utf8");
    this.u64(len);
    const at = this.reserve(len);
    this.buf.write(s, at, len, "utf8");
  }

  zeros(n: number): void {
    const at = this.reserve(n);
    this.buf.fill(0, at, this.length);
  }

  get size(): number {
    return this.length;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(w: ByteWriter, type: GgufScalarType, value: number | bigint | boolean | string): void {
  switch (type) {
    case "u8": return w.u8(value as number);
    case "i8": return w.i8(value as number);
    case "u16": return w.u16(value as number);
    case "i16": return w.i16(value as number);
    case "u32": return w.u32(value as number);
    case "i32": return w.i32(value as number);
    case "f32": return w.f32(value as number);
    case "f64": return w.f64(value as number);
    case "u64": return w.u64(value as bigint);
    case "i64": return w.i64(value as bigint);
    case "bool": return w.u8(value ? 1 : 0);
    case "string": return w.string(value as string);
  }
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  w.u32(ValueType[v.type]);
  if (v.type !== "array") {
    writeScalar(w, v.type, v.value);
    return;
  }
  // gguf-py refuses empty arrays; llama.cpp readers are written against that.
  if (v.values.length === 0) throw new Error(`GGUF metadata array ${key} is empty`);
  w.u32(ValueType[v.itemType]);
  w.u64(v.values.length);
  for (let i = 0; i < v.values.length; i++) {
    writeScalar(w, v.itemType, v.values[i]!);
  }
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function tensorBytes(t: GgufTensor): number {
  return byteSize(t.type, t.dims.reduce((a, b) => a * b, 1));
}

function validate(file: GgufFile): void {
  const keys = new Set<string>();
  for (const [key] of file.metadata) {
    if (keys.has(key)) throw new Error(`duplicate GGUF metadata key ${key}`);
    keys.add(key);
  }
  if (!keys.has("general.architecture")) throw new Error("GGUF metadata needs general.architecture");
  const names = new Set<string>();
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name) > MAX_TENSOR_NAME_BYTES) throw new Error(`tensor name too long: ${t.name}`);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`tensor ${t.name} has invalid dims [${t.dims.join(", ")}]`);
    }
    if (t.dims[0]! % blockElems(t.type) !== 0) {
      throw new Error(`tensor ${t.name}: row length ${t.dims[0]} is not a multiple of the block size of its type`);
    }
  }
}

function buildHeader(file: GgufFile): Buffer {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(file.tensors.length);
  w.u64(file.metadata.length);
  for (const [key, value] of file.metadata) {
    w.string(key);
    writeValue(w, key, value);
  }
  let offset = 0;
  for (const t of file.tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += padTo(tensorBytes(t), ALIGNMENT);
  }
  w.zeros(padTo(w.size, ALIGNMENT) - w.size);
  return w.bytes();
}

export async function writeGguf(path: string, file: GgufFile): Promise<void> {
  validate(file);
  const handle = await open(path, "w");
  try {
    await handle.write(buildHeader(file));
    const padding = Buffer.alloc(ALIGNMENT);
    for (const t of file.tensors) {
      const rowElems = t.dims[0]!;
      const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
      const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(CHUNK_ELEMS / rowElems)));
      const values = new Float32Array(rowsPerChunk * rowElems);
      const encoded = Buffer.allocUnsafe(byteSize(t.type, values.length));
      for (let row = 0; row < rows; row += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - row);
        const chunk = values.subarray(0, n * rowElems);
        chunk.fill(0);
        t.fill(chunk, row);
        const out = encoded.subarray(0, byteSize(t.type, chunk.length));
        encode(t.type, chunk, out);
        await handle.write(out);
      }
      const size = tensorBytes(t);
      await handle.write(padding, 0, padTo(size, ALIGNMENT) - size);
    }
  } finally {
    await handle.close();
  }
}
