/**
 * Kafka record batches (message format v2, KIP-98): the bytes of one partition's records in a
 * Produce request, encoded in one pass into one buffer. @platformatic/kafka 1.35 builds every
 * record from several small buffers that it then concatenates, which cost ~2.5 µs per record on
 * the producer's hot path; this encoder sizes the batch first and writes it in place.
 *
 * Layout (all big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8 (2),
 * crc u32 (CRC-32C of everything after it), attributes i16, lastOffsetDelta i32, baseTimestamp
 * i64, maxTimestamp i64, producerId i64, producerEpoch i16, baseSequence i32, recordCount i32,
 * then the records (compressed as one block when a codec is set). A record: length varint,
 * attributes i8, timestampDelta varlong, offsetDelta varint, key (length varint, -1 = null),
 * value (length varint + bytes), header count varint, headers (key and value with varint lengths).
 */
import type { EncodedBytes } from '../../api/event.js';
import { varintSize, writeVarint } from '../../api/varint.js';
import type { RawBatch, RawRecord } from './client.js';

/** Bytes before the records. */
export const BATCH_HEADER_SIZE = 61;
/** Offset of the attributes field: where the CRC-covered part starts. */
const CRC_START = 21;

export interface BatchRecord {
  /** The value, whole or as segments (written one after the other, not concatenated first). */
  value: Uint8Array | readonly Uint8Array[];
  headers?: readonly (readonly [Uint8Array, Uint8Array])[] | undefined;
}

export interface BatchParams {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  /** ms since the epoch, for every record (CreateTime). */
  timestamp: bigint;
  /** CRC-32C (Castagnoli) of the bytes. */
  crc32c: (bytes: Uint8Array) => number;
  /** Compression of the records block: the codec's attribute bits and its function. */
  compression?: { bitmask: number; compress: (records: Buffer) => Buffer } | undefined;
}

/** Bytes of a record value. */
export function valueLength(v: Uint8Array | readonly Uint8Array[]): number {
  if (v instanceof Uint8Array) return v.length;
  let n = 0;
  for (const s of v) n += s.length;
  return n;
}

/**
 * Records to encode, read by index: no object per record (a producer batch's events are read
 * straight from its buffers). The encoder asks each record's value length and headers, then
 * writes the values in order.
 */
export interface RecordRun {
  readonly count: number;
  valueLength(i: number): number;
  /** Writes record i's value (exactly valueLength(i) bytes) at `pos`. */
  writeValue(i: number, buf: Buffer, pos: number): void;
  headers(i: number): RecordHeaders;
  /** Records [from, to) of this run (producers cut runs into batches within the batch limits). */
  slice(from: number, to: number): RecordRun;
  /**
   * Bytes the run copies into the batch buffer before its values are written (`stage`): small
   * values are then moved within one buffer (copyWithin, ~3x cheaper than a copy between two).
   */
  readonly stagingSize?: number;
  stage?(buf: Buffer, at: number): void;
}

/** A run over records given one object each. */
export function listRun(records: readonly BatchRecord[]): RecordRun {
  const at = (i: number): BatchRecord => records[i] as BatchRecord;
  return {
    count: records.length,
    valueLength: (i) => valueLength(at(i).value),
    writeValue: (i, buf, pos) => {
      const v = at(i).value;
      if (v instanceof Uint8Array) buf.set(v, pos);
      else
        for (const s of v) {
          buf.set(s, pos);
          pos += s.length;
        }
    },
    headers: (i) => at(i).headers,
    slice: (from, to) => listRun(records.slice(from, to)),
  };
}

/** Size of a record's body (after its length varint). */
function bodySize(valueLen: number, h: RecordHeaders, offsetDelta: number): number {
  // attributes, timestampDelta 0, offsetDelta, null key (-1)
  return 1 + 1 + varintSize(offsetDelta) + 1 + varintSize(valueLen) + valueLen + headersSize(h);
}

/** Bytes of a record's headers section (count included). */
export function headersSize(h: RecordHeaders): number {
  if (h === undefined) return 1;
  if (isSection(h)) return h.byteLength;
  let size = varintSize(h.length);
  for (const [k, v] of h) size += varintSize(k.length) + k.length + varintSize(v.length) + v.length;
  return size;
}

/** A record's headers: key/value pairs, or its whole headers section already encoded (count included). */
export type RecordHeaders = readonly (readonly [Uint8Array, Uint8Array])[] | EncodedBytes | undefined;

function isSection(h: RecordHeaders): h is EncodedBytes {
  return h !== undefined && !Array.isArray(h);
}

function writeRecords(runs: readonly RecordRun[], bodies: Int32Array, values: Int32Array, buf: Buffer, pos: number): number {
  let k = 0;
  for (const run of runs) {
    for (let i = 0; i < run.count; i++, k++) {
      pos = writeVarint(buf, pos, bodies[k] as number);
      buf[pos++] = 0; // attributes
      buf[pos++] = 0; // timestampDelta: every record has the batch's timestamp
      pos = writeVarint(buf, pos, k);
      buf[pos++] = 1; // key length -1 (zigzag 1): null key
      const len = values[k] as number;
      pos = writeVarint(buf, pos, len);
      run.writeValue(i, buf, pos);
      pos += len;
      const h = run.headers(i);
      if (isSection(h)) {
        h.writeTo(buf, pos);
        pos += h.byteLength;
        continue;
      }
      pos = writeVarint(buf, pos, h === undefined ? 0 : h.length);
      if (h !== undefined) {
        for (const [hk, hv] of h) {
          pos = writeVarint(buf, pos, hk.length);
          buf.set(hk, pos);
          pos += hk.length;
          pos = writeVarint(buf, pos, hv.length);
          buf.set(hv, pos);
          pos += hv.length;
        }
      }
    }
  }
  return pos;
}

/** Encodes `records` (at least one) as one record batch with base offset 0. */
export function encodeRecordBatch(records: readonly BatchRecord[], p: BatchParams): Buffer {
  return encodeRuns([listRun(records)], p);
}

/** Encodes the records of `runs`, one after the other (at least one record), as one record batch with base offset 0. */
export function encodeRuns(runs: readonly RecordRun[], p: BatchParams): Buffer {
  let n = 0;
  for (const r of runs) n += r.count;
  if (n === 0) throw new RangeError('a record batch holds at least one record');
  const bodies = new Int32Array(n);
  const values = new Int32Array(n);
  let recordsSize = 0;
  let k = 0;
  for (const run of runs) {
    for (let i = 0; i < run.count; i++, k++) {
      const len = run.valueLength(i);
      const b = bodySize(len, run.headers(i), k);
      values[k] = len;
      bodies[k] = b;
      recordsSize += varintSize(b) + b;
    }
  }
  let staging = 0;
  for (const run of runs) staging += run.stagingSize ?? 0;
  // staged bytes go after the records, in the same buffer
  const stage = (buf: Buffer, at: number): void => {
    for (const run of runs) {
      if (run.stage === undefined) continue;
      run.stage(buf, at);
      at += run.stagingSize ?? 0;
    }
  };
  let buf: Buffer;
  let end: number;
  if (p.compression === undefined) {
    buf = Buffer.allocUnsafe(BATCH_HEADER_SIZE + recordsSize + staging);
    stage(buf, BATCH_HEADER_SIZE + recordsSize);
    end = writeRecords(runs, bodies, values, buf, BATCH_HEADER_SIZE);
    if (staging > 0) buf = buf.subarray(0, end);
  } else {
    const raw = Buffer.allocUnsafe(recordsSize + staging);
    stage(raw, recordsSize);
    writeRecords(runs, bodies, values, raw, 0);
    const compressed = p.compression.compress(staging > 0 ? raw.subarray(0, recordsSize) : raw);
    buf = Buffer.allocUnsafe(BATCH_HEADER_SIZE + compressed.length);
    buf.set(compressed, BATCH_HEADER_SIZE);
    end = buf.length;
  }
  buf.writeBigInt64BE(0n, 0); // baseOffset: assigned by the broker
  buf.writeInt32BE(end - 12, 8); // batchLength: the bytes after this field
  buf.writeInt32BE(-1, 12); // partitionLeaderEpoch: set by the broker
  buf[16] = 2; // magic
  buf.writeInt16BE(p.compression?.bitmask ?? 0, 21);
  buf.writeInt32BE(n - 1, 23); // lastOffsetDelta
  buf.writeBigInt64BE(p.timestamp, 27);
  buf.writeBigInt64BE(p.timestamp, 35);
  buf.writeBigInt64BE(p.producerId, 43);
  buf.writeInt16BE(p.producerEpoch, 51);
  buf.writeInt32BE(p.baseSequence, 53);
  buf.writeInt32BE(n, 57);
  buf.writeUInt32BE(p.crc32c(buf.subarray(CRC_START, end)) >>> 0, 17);
  return buf;
}

/** The base sequence after `count` more records (sequences wrap from 2^31 − 1 to 0). */
export function nextSequence(sequence: number, count: number): number {
  return (sequence + count) % 0x8000_0000;
}

// ---------------------------------------------------------------------------------------------
// Decoding (the records section of a Fetch response)

/** Reads varints from a buffer: one cursor, no allocation per field. */
class VarintReader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
  ) {}

  /** A zigzag varint (32-bit signed). */
  varint(): number {
    const b = this.buf;
    let v = 0;
    let shift = 0;
    for (;;) {
      const byte = b[this.pos++] as number;
      v |= (byte & 0x7f) << shift;
      if (byte < 0x80) break;
      shift += 7;
      if (shift > 28) throw new RangeError('varint too long');
    }
    return (v >>> 1) ^ -(v & 1);
  }

  /** A zigzag varlong, as a number (exact below 2^53, e.g. timestamp deltas). */
  varlong(): number {
    const b = this.buf;
    let v = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      const byte = b[this.pos++] as number;
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) break;
      mul *= 128;
      if (i >= 9) throw new RangeError('varlong too long');
    }
    return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
  }

  /** Bytes with a varint length (-1: null), as a view of the buffer. */
  bytes(): Buffer | null {
    const n = this.varint();
    if (n < 0) return null;
    const start = this.pos;
    this.pos += n;
    if (this.pos > this.buf.length) throw new RangeError('record field beyond the batch');
    return this.buf.subarray(start, this.pos);
  }
}

const NO_HEADERS: readonly [Buffer | null, Buffer | null][] = Object.freeze([]) as unknown as readonly [Buffer | null, Buffer | null][];

/**
 * The complete record batches of a Fetch response's records bytes (a partial batch at the end, which
 * brokers may send, is left out). Values and headers are views of `buf` (or of the decompressed
 * records). `decompress(bitmask, bytes)` inflates the records of a compressed batch.
 */
export function decodeRecordBatches(buf: Buffer, decompress: (bitmask: number, bytes: Buffer) => Buffer): RawBatch[] {
  const out: RawBatch[] = [];
  let pos = 0;
  while (pos + BATCH_HEADER_SIZE <= buf.length) {
    const end = pos + 12 + buf.readInt32BE(pos + 8);
    if (end > buf.length) break; // partial batch
    const magic = buf.readInt8(pos + 16);
    if (magic !== 2) throw new RangeError(`unsupported record batch format (magic ${magic})`);
    const attributes = buf.readInt16BE(pos + 21);
    const count = buf.readInt32BE(pos + 57);
    const firstTimestamp = buf.readBigInt64BE(pos + 27);
    let r: VarintReader;
    const codec = attributes & 0b111;
    if (codec !== 0) r = new VarintReader(decompress(codec, buf.subarray(pos + BATCH_HEADER_SIZE, end)), 0);
    else r = new VarintReader(buf.subarray(0, end), pos + BATCH_HEADER_SIZE);
    const records: RawRecord[] = new Array<RawRecord>(count);
    for (let i = 0; i < count; i++) {
      const length = r.varint();
      const next = r.pos + length;
      r.pos++; // attributes
      r.varlong(); // timestampDelta (unused: events carry no record time)
      const offsetDelta = r.varint();
      r.bytes(); // key (unused)
      const value = r.bytes();
      const nh = r.varint();
      let headers = NO_HEADERS;
      if (nh > 0) {
        const hs: [Buffer | null, Buffer | null][] = [];
        for (let h = 0; h < nh; h++) hs.push([r.bytes(), r.bytes()]);
        headers = hs;
      }
      r.pos = next;
      records[i] = { offsetDelta, value, headers };
    }
    out.push({
      firstOffset: buf.readBigInt64BE(pos),
      lastOffsetDelta: buf.readInt32BE(pos + 23),
      firstTimestamp,
      producerId: buf.readBigInt64BE(pos + 43),
      transactional: (attributes & 0x10) !== 0,
      control: (attributes & 0x20) !== 0,
      records,
    });
    pos = end;
  }
  return out;
}
