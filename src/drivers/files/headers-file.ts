/**
 * The `headers` extension file (files-driver.md §10.2): records
 * `u64 event_id, u64 metadata_offset, u32 L, L bytes of compact JSON (string values)`.
 */
import { dumpCompact, isJsonObject, parseJson } from '../../api/json.js';
import type { Headers } from '../../api/driver-spi.js';

export const HEADER_PREFIX = 20;

export function encodeHeadersRecord(eventId: number, metadataOffset: number, headers: Headers): Buffer {
  const body = Buffer.from(dumpCompact(headers as { [k: string]: string }), 'utf8');
  const rec = Buffer.allocUnsafe(HEADER_PREFIX + body.length);
  writeU64(rec, 0, eventId);
  writeU64(rec, 8, metadataOffset);
  rec.writeUInt32LE(body.length, 16);
  body.copy(rec, HEADER_PREFIX);
  return rec;
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

export function writeU64(buf: Buffer, pos: number, v: number): void {
  buf.writeUInt32LE(v >>> 0, pos);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), pos + 4);
}
