/**
 * The octopus record value layout (kafka-octopus.md §5), the interoperability contract:
 *
 *   u64 LE M | u64 LE D | M bytes: serialized metadata record | D bytes: event data
 *
 * and the end-of-stream marker, a 16-byte value with M = D = 2^64 − 1.
 */
import { DiasporaError, ErrorCodes } from '../../api/errors.js';

export const HEADER_SIZE = 16;

export const SIZE_TOO_SMALL = 'Unexpected message size received (payload < 2*sizeof(size_t))';
export const SIZE_MISMATCH = "Unexpected message size received (payload size doesn't match declared metadata size and data size)";

/** The end-of-stream marker value. */
export function endOfStreamValue(): Buffer {
  return Buffer.alloc(HEADER_SIZE, 0xff);
}

/** The 16-byte header of a value with `metadataSize` bytes of record and `dataSize` bytes of data. */
export function encodeHeader(metadataSize: number, dataSize: number, out: Buffer = Buffer.allocUnsafe(HEADER_SIZE), at = 0): Buffer {
  // u64 as two u32 words (sizes stay below 2^53): no bigint on the hot path
  out.writeUInt32LE(metadataSize >>> 0, at);
  out.writeUInt32LE(Math.floor(metadataSize / 0x1_0000_0000), at + 4);
  out.writeUInt32LE(dataSize >>> 0, at + 8);
  out.writeUInt32LE(Math.floor(dataSize / 0x1_0000_0000), at + 12);
  return out;
}

/**
 * One record value as segments, nothing copied: the header (written into `headers` at
 * `at`, HEADER_SIZE bytes), the serialized metadata record, then the data segments.
 */
export function valueSegments(record: Uint8Array, data: readonly Uint8Array[], headers: Buffer, at: number): Uint8Array[] {
  let dataSize = 0;
  for (const s of data) dataSize += s.length;
  encodeHeader(record.length, dataSize, headers, at);
  const out: Uint8Array[] = [headers.subarray(at, at + HEADER_SIZE), record];
  for (const s of data) out.push(s);
  return out;
}

/** One record value: header, the serialized metadata record, then the data segments (one buffer). */
export function encodeValue(record: Uint8Array, data: readonly Uint8Array[]): Buffer {
  return Buffer.concat(valueSegments(record, data, Buffer.allocUnsafe(HEADER_SIZE), 0));
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
