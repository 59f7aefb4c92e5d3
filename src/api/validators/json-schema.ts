/**
 * JSON Schema (draft-07) validation of metadata for the `schema` validator and serializer
 * (api.md §5.3), on top of ajv + ajv-formats.
 *
 * Compiled validators are cached by the canonical text of their schema, so many topics sharing a
 * schema compile it once. ajv does not understand `bigint`: schemas and values that contain one are
 * presented to it with plain numbers (values only when they actually contain a bigint).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { DiasporaError, ErrorCodes } from '../errors.js';
import { dumpCompact, isJsonObject, toPlainNumbers, type Json } from '../json.js';

/** Prefix of every schema rejection message. */
export const SCHEMA_REJECTION_PREFIX = 'Metadata does not comply to required schema:\n';

// ajv-formats is CommonJS: under NodeNext its default import is `module.exports`, which also
// carries the plugin as `.default`.
const addFormats = addFormatsModule.default;

let ajvInstance: Ajv | undefined;

function ajv(): Ajv {
  if (ajvInstance === undefined) {
    // addUsedSchema: false — schemas carrying the same `$id` in different topics must not clash
    // inside the shared instance.
    ajvInstance = new Ajv({ allErrors: true, strict: false, addUsedSchema: false });
    addFormats(ajvInstance);
  }
  return ajvInstance;
}

const cache = new Map<string, ValidateFunction>();

/** True when `v` contains a bigint anywhere (no allocation; stops at the first one). */
export function containsBigint(v: Json): boolean {
  if (typeof v === 'bigint') return true;
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (containsBigint(v[i] as Json)) return true;
    return false;
  }
  for (const k in v) {
    if (Object.prototype.hasOwnProperty.call(v, k) && containsBigint(v[k] as Json)) return true;
  }
  return false;
}

function compile(schema: Json): ValidateFunction {
  const key = dumpCompact(schema);
  let fn = cache.get(key);
  if (fn === undefined) {
    const plain = containsBigint(schema) ? toPlainNumbers(schema) : schema;
    if (typeof plain !== 'boolean' && !isJsonObject(plain)) {
      throw new DiasporaError('Invalid JSON schema: schema must be an object or a boolean', { code: ErrorCodes.CONFIG });
    }
    const instance = ajv();
    try {
      fn = instance.compile(plain);
    } catch (err) {
      // ajv keeps a failed schema in its identity cache and would skip the meta-schema check the
      // next time the same object is compiled: drop it.
      try {
        instance.removeSchema(plain);
      } catch {
        /* nothing cached */
      }
      const detail = err instanceof Error ? err.message : String(err);
      throw new DiasporaError(`Invalid JSON schema: ${detail}`, { code: ErrorCodes.CONFIG, cause: err });
    }
    cache.set(key, fn);
  }
  return fn;
}

/** Decodes one JSON-pointer token (`~1` → `/`, `~0` → `~`). */
function unescapePointerToken(token: string): string {
  return token.indexOf('~') < 0 ? token : token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The value at a JSON pointer (as produced by ajv's `instancePath`), `undefined` when absent. */
function resolvePointer(root: Json, pointer: string): Json | undefined {
  if (pointer === '') return root;
  let cur: Json | undefined = root;
  for (const raw of pointer.slice(1).split('/')) {
    const token = unescapePointerToken(raw);
    if (Array.isArray(cur)) cur = cur[Number(token)];
    else if (isJsonObject(cur) && Object.prototype.hasOwnProperty.call(cur, token)) cur = cur[token];
    else return undefined;
  }
  return cur;
}

function formatError(root: Json, err: ErrorObject): string {
  const value = resolvePointer(root, err.instancePath);
  const text = value === undefined ? '' : dumpCompact(value);
  return `'${err.instancePath}' - '${text}': ${err.message ?? err.keyword}`;
}

/**
 * Compiles (or fetches from the cache) a draft-07 schema. The returned function gives `undefined`
 * for a valid value, else the complete `InvalidMetadata` message:
 * `Metadata does not comply to required schema:\n` + one `'<pointer>' - '<value>': <message>` line
 * per error, joined by `\n`. Throws `DiasporaError("Invalid JSON schema: <detail>")`.
 */
export function compileJsonSchema(schema: Json): (value: Json) => string | undefined {
  const fn = compile(schema);
  return (value) => {
    const presented = containsBigint(value) ? toPlainNumbers(value) : value;
    if (fn(presented)) return undefined;
    const errors = fn.errors ?? [];
    // Pointers are resolved in the original value so that bigints print exactly.
    return SCHEMA_REJECTION_PREFIX + errors.map((e) => formatError(value, e)).join('\n');
  };
}

/** Checks that `schema` compiles as a draft-07 JSON Schema (throws `Invalid JSON schema: …`). */
export function validateSchemaDefinition(schema: Json): void {
  compile(schema);
}
