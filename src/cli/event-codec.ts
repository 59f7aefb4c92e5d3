/**
 * Line formats shared by the console tools: `raw` (a line is a JSON string), `json` (a line is
 * any JSON value) and `envelope` (`{"metadata": …, "data": "<base64>"}`).
 */
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { dumpCompact, isJsonObject, parseJson, type Json } from '../api/json.js';
import { Metadata } from '../api/metadata.js';

export type LineFormat = 'raw' | 'json' | 'envelope';
export const LINE_FORMATS: readonly LineFormat[] = ['raw', 'json', 'envelope'];

/** Decodes one input line into metadata and optional data. */
export function decodeLine(line: string, format: LineFormat): { metadata: Metadata; data: Buffer | undefined } {
  if (format === 'raw') return { metadata: Metadata.fromString(line), data: undefined };
  const v = parseJson(line);
  if (format === 'json') return { metadata: new Metadata(v), data: undefined };
  if (!isJsonObject(v)) throw new DiasporaError('envelope must be a JSON object', { code: ErrorCodes.INVALID_ARGUMENT });
  const data = v['data'];
  if (data !== undefined && typeof data !== 'string') {
    throw new DiasporaError('"data" of an envelope must be a base64 string', { code: ErrorCodes.INVALID_ARGUMENT });
  }
  return { metadata: new Metadata(v['metadata'] ?? {}), data: data === undefined ? undefined : Buffer.from(data, 'base64') };
}

/** Encodes an event as one line (without the newline). */
export function encodeLine(metadata: Metadata, data: Buffer, format: LineFormat): string {
  if (format === 'raw') {
    const v = metadata.json;
    return typeof v === 'string' && !/[\r\n]/.test(v) ? v : metadata.dump();
  }
  if (format === 'json') return metadata.dump();
  const env: { [k: string]: Json } = { metadata: metadata.json };
  if (data.length > 0) env['data'] = data.toString('base64');
  return dumpCompact(env);
}
