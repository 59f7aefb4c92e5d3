/**
 * The octopus record value layout (kafka-octopus.md §5), the interoperability contract:
 *
 *   u64 LE M | u64 LE D | M bytes: serialized metadata record | D bytes: event data
 *
 * and the end-of-stream marker, a 16-byte value with M = D = 2^64 − 1.
 */
import type { DataSegments } from '../../api/data-segments.js';
import type { EventBatch } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { writeU64LE } from '../common/little-endian.js';
import type { RecordHeaders, RecordRun } from './record-batch.js';

export const HEADER_SIZE = 16;

export const SIZE_TOO_SMALL = 'Unexpected message size received (payload < 2*sizeof(size_t))';
export const SIZE_MISMATCH = "Unexpected message size received (payload size doesn't match declared metadata size and data size)";

/** The end-of-stream marker value. */
export function endOfStreamValue(): Buffer {
  return Buffer.alloc(HEADER_SIZE, 0xff);
}

/** The 16-byte header of a value with `metadataSize` bytes of record and `dataSize` bytes of data. */
export function encodeHeader(metadataSize: number, dataSize: number, out: Buffer = Buffer.allocUnsafe(HEADER_SIZE), at = 0): Buffer {
  // sizes stay below 2^53: no bigint on the hot path
  writeU64LE(out, at, metadataSize);
  writeU64LE(out, at + 8, dataSize);
  return out;
}

/** One record value: header, the serialized metadata record, then the data segments (one buffer). */
export function encodeValue(record: Uint8Array, data: readonly Uint8Array[]): Buffer {
  let dataSize = 0;
  for (const s of data) dataSize += s.length;
  return Buffer.concat([encodeHeader(record.length, dataSize), record, ...data]);
}

/**
 * Events [from, to) of a producer batch as octopus values, written by the record batch encoder
 * straight from the batch's buffers: the metadata records of the run are staged into the batch
 * buffer in one copy, then each value is its header, its record (moved within the buffer) and its
 * data segments. No view nor array per event. `kafkaHeaders`: the Kafka headers of each event of
 * the batch, if any has some.
 */
export class OctopusRun implements RecordRun {
  /** Offset of the run's first metadata record in the batch's concatenated chunks. */
  private readonly metaStart: number;
  readonly stagingSize: number;
  /** The buffer stage() copied the run's metadata records into, and where. */
  private stagedIn: Buffer | undefined;
  private staged = 0;

  constructor(
    private readonly batch: EventBatch,
    private readonly from: number,
    private readonly to: number,
    private readonly kafkaHeaders: readonly RecordHeaders[] | undefined,
  ) {
    const ends = batch.metadataEnds;
    this.metaStart = from === 0 ? 0 : (ends[from - 1] as number);
    this.stagingSize = to > from ? (ends[to - 1] as number) - this.metaStart : 0;
  }

  get count(): number {
    return this.to - this.from;
  }

  /** The same events from `from` to `to` (relative to this run). */
  slice(from: number, to: number): OctopusRun {
    return new OctopusRun(this.batch, this.from + from, this.from + to, this.kafkaHeaders);
  }

  stage(buf: Buffer, at: number): void {
    this.stagedIn = buf;
    this.staged = at;
    // the run's bytes [metaStart, metaStart + stagingSize) of the concatenated chunks
    let lo = this.metaStart;
    const hi = lo + this.stagingSize;
    let chunkStart = 0;
    for (const c of this.batch.metadata) {
      const chunkEnd = chunkStart + c.length;
      if (lo < chunkEnd && lo < hi) {
        const n = Math.min(hi, chunkEnd) - lo;
        c.copy(buf, at, lo - chunkStart, lo - chunkStart + n);
        at += n;
        lo += n;
      }
      chunkStart = chunkEnd;
    }
  }

  valueLength(i: number): number {
    const j = this.from + i;
    const ends = this.batch.metadataEnds;
    const d = this.batch.data[j];
    return HEADER_SIZE + (ends[j] as number) - (j === 0 ? 0 : (ends[j - 1] as number)) + (d === undefined ? 0 : d.size);
  }

  writeValue(i: number, buf: Buffer, pos: number): void {
    const j = this.from + i;
    const ends = this.batch.metadataEnds;
    const start = j === 0 ? 0 : (ends[j - 1] as number);
    const end = ends[j] as number;
    const d = this.batch.data[j];
    const dataSize = d === undefined ? 0 : d.size;
    encodeHeader(end - start, dataSize, buf, pos);
    pos += HEADER_SIZE;
    if (buf === this.stagedIn) {
      const from = this.staged + start - this.metaStart;
      buf.copyWithin(pos, from, from + end - start);
    } else {
      // not staged in this buffer: copy from the chunk holding the record (records never span chunks)
      let chunkStart = 0;
      for (const c of this.batch.metadata) {
        if (start < chunkStart + c.length) {
          c.copy(buf, pos, start - chunkStart, end - chunkStart);
          break;
        }
        chunkStart += c.length;
      }
    }
    pos += end - start;
    if (dataSize > 0) {
      for (const s of (d as DataSegments).segments) {
        buf.set(s, pos);
        pos += s.length;
      }
    }
  }

  headers(i: number): RecordHeaders {
    return this.kafkaHeaders?.[this.from + i];
  }
}

export type DecodedValue =
  | { kind: 'event'; metadataStart: number; metadataSize: number; dataStart: number; dataSize: number }
  | { kind: 'end' };

export class MalformedRecord extends DiasporaError {
  constructor(message: string) {
    super(message, { code: ErrorCodes.CORRUPTED });
    this.name = 'MalformedRecord';
  }
}

/** Parses a record value (null values count as empty); throws MalformedRecord with the octopus texts. */
export function decodeValue(value: Uint8Array | null | undefined): DecodedValue {
  const len = value === null || value === undefined ? 0 : value.length;
  if (len < HEADER_SIZE) throw new MalformedRecord(SIZE_TOO_SMALL);
  const v = value as Uint8Array;
  const b = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
  // u64 sizes as u32 word pairs: a value length fits in 32 bits, so any non-zero high word is a
  // mismatch (or, with every bit set in both sizes, the end marker) and no bigint is needed
  const mLo = b.readUInt32LE(0);
  const mHi = b.readUInt32LE(4);
  const dLo = b.readUInt32LE(8);
  const dHi = b.readUInt32LE(12);
  if (mHi !== 0 || dHi !== 0) {
    if (mLo === 0xffff_ffff && mHi === 0xffff_ffff && dLo === 0xffff_ffff && dHi === 0xffff_ffff && len === HEADER_SIZE) return { kind: 'end' };
    throw new MalformedRecord(SIZE_MISMATCH);
  }
  if (HEADER_SIZE + mLo + dLo !== len) throw new MalformedRecord(SIZE_MISMATCH);
  return { kind: 'event', metadataStart: HEADER_SIZE, metadataSize: mLo, dataStart: HEADER_SIZE + mLo, dataSize: dLo };
}
