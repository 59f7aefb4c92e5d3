/**
 * The `headers` extension file (files-driver.md §10.2): records
 * `u64 event_id, u64 metadata_offset, u32 L, L bytes of compact JSON (string values)`.
 */
import { dumpCompact, isJsonObject, parseJson } from '../../api/json.js';
import type { Headers } from '../../api/driver-spi.js';
import { encodedHeaders, type EncodedHeaders } from '../../api/event.js';
import { writeU32LE, writeU64LE } from '../common/little-endian.js';

export const HEADER_PREFIX = 20;

/** Characters that make a string need JSON escaping (or are invalid alone). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * Canonical compact JSON of a string map (sorted keys): the same bytes as dumpCompact, with a
 * fast path for the usual strings that need no escaping.
 */
export function encodeStringMap(headers: Headers): string {
  const keys = Object.keys(headers);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      // without surrogates (checked below) UTF-16 order is the canonical code-point order
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = headers[k] as string;
    if (NEEDS_ESCAPE.test(k) || NEEDS_ESCAPE.test(v)) return dumpCompact(headers as { [k: string]: string });
    out += (i > 0 ? ',"' : '"') + k + '":"' + v + '"';
  }
  return out + '}';
}

/** Encodes the headers records of a batch into one buffer. */
export function encodeHeadersRecords(records: { eventId: number; metadataOffset: number; headers: Headers }[]): Buffer {
  const bodies = records.map((r) => encodedHeaders(r.headers) ?? encodeStringMap(r.headers));
  // one UTF-8 pass: a UTF-16 code unit never takes more than 3 bytes
  let max = 0;
  for (const b of bodies) max += HEADER_PREFIX + (typeof b === 'string' ? 3 * b.length : b.byteLength);
  const buf = Buffer.allocUnsafe(max);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as { eventId: number; metadataOffset: number };
    const body = bodies[i] as string | EncodedHeaders;
    writeU64LE(buf, pos, r.eventId);
    writeU64LE(buf, pos + 8, r.metadataOffset);
    let n: number;
    if (typeof body === 'string') n = buf.write(body, pos + HEADER_PREFIX, 'utf8');
    else {
      body.writeTo(buf, pos + HEADER_PREFIX);
      n = body.byteLength;
    }
    writeU32LE(buf, pos + 16, n);
    pos += HEADER_PREFIX + n;
  }
  return buf.subarray(0, pos);
}


export interface HeadersRecord {
  eventId: number;
  metadataOffset: number;
  headers: Headers;
  /** Offset just past this record in the file. */
  end: number;
}

/** Decodes the complete records of `buf` (file bytes starting at `base`); a partial tail is left. */
export function decodeHeadersRecords(buf: Buffer, base: number): HeadersRecord[] {
  const out: HeadersRecord[] = [];
  let pos = 0;
  while (pos + HEADER_PREFIX <= buf.length) {
    const len = buf.readUInt32LE(pos + 16);
    if (pos + HEADER_PREFIX + len > buf.length) break;
    let headers: Headers = {};
    try {
      const v = parseJson(buf.toString('utf8', pos + HEADER_PREFIX, pos + HEADER_PREFIX + len));
      if (isJsonObject(v)) {
        const h: Record<string, string> = {};
        for (const [k, x] of Object.entries(v)) if (typeof x === 'string') h[k] = x;
        headers = h;
      }
    } catch {
      // an unreadable record carries no headers
    }
    out.push({ eventId: readU64(buf, pos), metadataOffset: readU64(buf, pos + 8), headers, end: base + pos + HEADER_PREFIX + len });
    pos += HEADER_PREFIX + len;
  }
  return out;
}

/** u64 LE as a JS number (file offsets and ids stay far below 2^53). */
export function readU64(buf: Buffer, pos: number): number {
  return buf.readUInt32LE(pos) + buf.readUInt32LE(pos + 4) * 0x1_0000_0000;
}
