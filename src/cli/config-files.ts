/**
 * `--driver-config` / `--topic-config` files and how dotted options are applied to them (diaspora-ctl.md §4).
 */
import { readFileSync } from 'node:fs';
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { type Json, type JsonObject, isJsonObject, parseJson, setMember } from '../api/json.js';
import { ConfigFileOpenError } from './errors.js';

export { ConfigFileOpenError, runtimeErrorText } from './errors.js';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads a JSON config file whose root must be an object. A leading UTF-8 byte-order mark is ignored.
 *
 * Errors (log them with `[error] ${runtimeErrorText(err)}`, exit 1):
 * * missing or unreadable file (including a directory) → {@link ConfigFileOpenError}
 *   `Failed to open config file: <file>`, logged without the `Error: ` prefix;
 * * invalid JSON → DiasporaError (code JSON) `Could not parse JSON: <detail>` (invalid UTF-8: `<detail>` = `invalid UTF-8`);
 * * root not an object → DiasporaError (code CONFIG) `Config file <file> must contain a JSON object`.
 */
export function loadJsonConfigFile(file: string): JsonObject {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ConfigFileOpenError(file, { cause: err });
  }
  let text: string;
  try {
    // strict: a Latin-1 file must not turn "café" into "caf\ufffd" silently (JSON text is UTF-8)
    text = UTF8.decode(bytes);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_STRING_TOO_LONG') throw err;
    throw new DiasporaError('Could not parse JSON: invalid UTF-8', { code: ErrorCodes.JSON });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const value = parseJson(text);
  if (!isJsonObject(value)) {
    throw new DiasporaError(`Config file ${file} must contain a JSON object`, { code: ErrorCodes.CONFIG });
  }
  return value;
}

/**
 * RFC 7386 JSON Merge Patch: a `null` member of `patch` deletes that member, object members merge recursively,
 * anything else (arrays, scalars) replaces; a non-object patch replaces the target entirely, and an object patch on
 * a non-object target starts from `{}`. The inputs are not modified; the result may share unmodified sub-values
 * with them.
 */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const out: JsonObject = {};
  if (isJsonObject(target)) for (const k of Object.keys(target)) setMember(out, k, target[k] as Json);
  for (const k of Object.keys(patch)) {
    const v = patch[k] as Json;
    if (v === null) {
      delete out[k];
    } else {
      const cur = Object.prototype.hasOwnProperty.call(out, k) ? (out[k] as Json) : null;
      setMember(out, k, mergePatch(cur, v));
    }
  }
  return out;
}
