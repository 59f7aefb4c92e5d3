/**
 * Line formats of the fifo daemon (diaspora-ctl.md §7.3, §7.4) and of `diaspora-ctl produce`: one line of a
 * producer FIFO (or of standard input) → one event, one event → one line of a consumer FIFO.
 *
 * | format     | producer line                                        | consumer line                                   |
 * |------------|------------------------------------------------------|-------------------------------------------------|
 * | `raw`      | metadata = the line as a JSON string, byte for byte  | the string itself if the metadata is a string without CR/LF, else compact canonical JSON |
 * | `json`     | metadata = the line parsed as JSON (any value)       | compact canonical JSON of the metadata           |
 * | `envelope` | `{"metadata": <any, default {}>, "data": "<base64>"}` (`data` optional) | `{"data":"<base64>","metadata":…}` (data omitted when empty) |
 */
import { constants } from 'node:buffer';
import type { DataSegments } from '../api/data-segments.js';
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { dumpCompact, isJsonObject, parseJson, type Json, type JsonObject } from '../api/json.js';
import { Metadata } from '../api/metadata.js';
import type { FifoFormat } from './fifo-options.js';

export interface DecodedLine {
  metadata: Metadata;
  /** Event data (envelope format only). */
  data: Buffer | undefined;
}

const { MAX_STRING_LENGTH } = constants;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Standard base64, padded or not. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

function envelopeError(message: string): DiasporaError {
  return new DiasporaError(`Invalid envelope: ${message}`, { code: ErrorCodes.INVALID_ARGUMENT });
}

/**
 * Decodes UTF-8 strictly; invalid input throws `invalid UTF-8`, valid input longer than a JS string can be throws
 * `line too long: <n> bytes (at most <max> characters)`.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STRING_TOO_LONG') {
      throw new DiasporaError(`line too long: ${bytes.length} bytes (at most ${MAX_STRING_LENGTH} characters)`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    throw new DiasporaError('invalid UTF-8', { code: ErrorCodes.INVALID_ARGUMENT });
  }
}

/**
 * Turns one producer-FIFO line (without its `\n` and trailing `\r`) into an event. Throws on bad input with the
 * message to log after `Failed to push event: ` (`invalid UTF-8`, `Could not parse JSON: …`, `Invalid envelope: …`).
 */
export function decodeProducerLine(bytes: Uint8Array, format: FifoFormat): DecodedLine {
  return decodeLineText(decodeUtf8(bytes), format);
}

/** {@link decodeProducerLine} for a line already decoded as text. */
export function decodeLineText(text: string, format: FifoFormat): DecodedLine {
  switch (format) {
    case 'raw':
      return { metadata: Metadata.fromString(text), data: undefined };
    case 'json':
      return { metadata: Metadata.parse(text), data: undefined };
    case 'envelope': {
      const v = parseJson(text);
      if (!isJsonObject(v)) throw envelopeError('expected a JSON object');
      const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(v, k);
      const keys = Object.keys(v);
      if (!has('metadata') && !has('data') && keys.length > 0) {
        // a plain JSON line given as an envelope: its content would be dropped silently (metadata {})
        const shown = keys.slice(0, 5).map((k) => `'${k.length > 40 ? `${k.slice(0, 40)}…` : k}'`).join(', ');
        throw envelopeError(`no 'metadata' or 'data' key (found ${shown}${keys.length > 5 ? ', …' : ''})`);
      }
      const md: Json = has('metadata') ? (v['metadata'] as Json) : {};
      let data: Buffer | undefined;
      if (has('data')) {
        const d = v['data'];
        if (typeof d !== 'string' || !BASE64.test(d)) throw envelopeError("'data' must be a base64 string");
        data = Buffer.from(d, 'base64');
      }
      return { metadata: new Metadata(md), data };
    }
  }
}

/** Builds the consumer-FIFO line (including its trailing `\n`) for an event. */
export function encodeConsumerLine(metadata: Metadata, data: DataSegments | undefined, format: FifoFormat): string {
  switch (format) {
    case 'raw': {
      // fast path on the canonical text: a JSON string without escapes is the string itself (and has no CR/LF)
      const text = metadata.dump();
      if (text.length >= 2 && text.charCodeAt(0) === 0x22 && !text.includes('\\')) return text.slice(1, -1) + '\n';
      const v = metadata.json;
      if (typeof v === 'string' && !v.includes('\n') && !v.includes('\r')) return v + '\n';
      return metadata.dump() + '\n';
    }
    case 'json':
      return metadata.dump() + '\n';
    case 'envelope': {
      const out: JsonObject = { metadata: metadata.json };
      if (data !== undefined && data.size > 0) out['data'] = data.toBuffer().toString('base64');
      return dumpCompact(out) + '\n';
    }
  }
}
