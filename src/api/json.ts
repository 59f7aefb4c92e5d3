/**
 * Canonical JSON (files-driver.md §5): a bigint-safe parser and a writer whose output is
 * byte-identical to nlohmann::json's `dump()` as used by the reference implementation.
 *
 * Why in-house: `JSON.parse` loses 64-bit integers and `JSON.stringify` neither sorts keys by
 * UTF-8 bytes nor formats floats the way nlohmann does (`1e-05`, `1e+20`, `2.0`).
 */
import { DiasporaError, ErrorCodes } from './errors.js';

export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Parses JSON text; integers outside ±(2^53−1) become bigint (beyond the 64-bit range: a float). A number beyond the
 * double range → `Could not parse JSON: number overflow parsing '<literal>' …` (as the reference).
 */
export function parseJson(text: string): Json {
  // Fast path: without a run of 16+ digits every integer literal is a safe integer, so JSON.parse
  // is exact. "-0" is excluded because nlohmann reads the integer literal -0 as 0.
  // Also excluded: exponents of 3+ digits, which may overflow the double range (refused by the parser below).
  if (!/\d{16}/.test(text) && !text.includes('-0') && !/\\u[dD][89a-fA-F]/.test(text) && !/\d[eE][+-]?\d{3}/.test(text)) {
    try {
      return JSON.parse(text) as Json;
    } catch (err) {
      throw new DiasporaError(`Could not parse JSON: ${(err as Error).message}`, { code: ErrorCodes.JSON });
    }
  }
  return new Parser(text).parseDocument();
}

class Parser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): Json {
    this.skipWs();
    const value = this.parseValue(0);
    this.skipWs();
    if (this.pos < this.text.length) this.fail('unexpected text after the JSON value');
    return value;
  }

  private fail(what: string): never {
    let line = 1;
    let col = 1;
    for (let i = 0; i < this.pos && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        col = 1;
      } else col++;
    }
    throw new DiasporaError(`Could not parse JSON: ${what} at line ${line}, column ${col}`, { code: ErrorCodes.JSON });
  }

  private skipWs(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.pos++;
      else break;
    }
  }

  private parseValue(depth: number): Json {
    if (depth > 10_000) this.fail('nesting too deep');
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.parseObject(depth);
      case '[':
        return this.parseArray(depth);
      case '"':
        return this.parseString();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      case undefined:
        return this.fail('unexpected end of input');
      default:
        if (c === '-' || (c >= '0' && c <= '9')) return this.parseNumber();
        return this.fail(`unexpected character '${c}'`);
    }
  }

  private literal<T extends Json>(word: string, value: T): T {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    return this.fail('invalid literal');
  }

  private parseObject(depth: number): JsonObject {
    const obj: JsonObject = {};
    this.pos++;
    this.skipWs();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return obj;
    }
    for (;;) {
      this.skipWs();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.parseString();
      this.skipWs();
      if (this.text[this.pos] !== ':') this.fail("expected ':'");
      this.pos++;
      this.skipWs();
      const value = this.parseValue(depth + 1);
      setMember(obj, key, value);
      this.skipWs();
      const sep = this.text[this.pos];
      this.pos++;
      if (sep === '}') return obj;
      if (sep !== ',') {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }

  private parseArray(depth: number): Json[] {
    const arr: Json[] = [];
    this.pos++;
    this.skipWs();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return arr;
    }
    for (;;) {
      this.skipWs();
      arr.push(this.parseValue(depth + 1));
      this.skipWs();
      const sep = this.text[this.pos];
      this.pos++;
      if (sep === ']') return arr;
      if (sep !== ',') {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  private parseString(): string {
    // Find the closing quote; let JSON.parse handle the escapes of that one token.
    const t = this.text;
    const start = this.pos;
    let i = start + 1;
    for (;;) {
      if (i >= t.length) {
        this.pos = i;
        this.fail('unterminated string');
      }
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) i += 2;
      else {
        if (c < 0x20) {
          this.pos = i;
          this.fail('control character in string');
        }
        i++;
      }
    }
    this.pos = i + 1;
    let s: string;
    try {
      s = JSON.parse(t.slice(start, i + 1)) as string;
    } catch (err) {
      this.pos = start;
      return this.fail(`invalid string (${(err as Error).message})`);
    }
    if (!s.isWellFormed()) {
      this.pos = start;
      this.fail('invalid string: lone UTF-16 surrogate');
    }
    return s;
  }

  private parseNumber(): number | bigint {
    const t = this.text;
    const m = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
    m.lastIndex = this.pos;
    const match = m.exec(t);
    if (!match || match[0] === '-') return this.fail('invalid number');
    const lit = match[0];
    const v = match[2] === undefined && match[3] === undefined ? integerFromLiteral(lit) : Number(lit);
    // like nlohmann (out_of_range.406): a value beyond the double range is an error, not Infinity (dumped as null)
    if (typeof v === 'number' && !Number.isFinite(v)) return this.fail(`number overflow parsing '${lit}'`);
    this.pos += lit.length;
    return v;
  }
}

/** An integer literal as nlohmann reads it: exact up to the 64-bit ranges, a double beyond. */
export function integerFromLiteral(lit: string): number | bigint {
  if (lit.length <= 15) {
    const n = Number(lit);
    return n === 0 ? 0 : n; // "-0" is the integer 0
  }
  const b = BigInt(lit);
  if (b >= -9007199254740991n && b <= 9007199254740991n) return Number(b);
  if (b > UINT64_MAX || b < INT64_MIN) return Number(lit);
  return b;
}

/** Sets `obj[key] = value` as an own data property, even for `__proto__`. */
export function setMember(obj: JsonObject, key: string, value: Json): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Compares two strings by their UTF-8 bytes (= code points), not by UTF-16 code units. */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF, so they must sort after E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

const SURROGATE = /[\ud800-\udfff]/;

function sortedKeys(obj: JsonObject): string[] {
  const keys = Object.keys(obj);
  if (keys.length < 2) return keys;
  for (const k of keys) if (SURROGATE.test(k)) return keys.sort(compareUtf8);
  return keys.sort(); // without surrogates, UTF-16 order is code-point order
}

function dumpString(s: string): string {
  if (!s.isWellFormed()) {
    throw new DiasporaError('Could not serialize metadata: invalid UTF-16 string', { code: ErrorCodes.JSON });
  }
  // JSON.stringify escapes exactly like nlohmann for well-formed strings: \" \\ \b \f \n \r \t,
  // \u00xx (lowercase) for other controls, everything else (DEL, '/', non-ASCII) raw.
  return JSON.stringify(s);
}

/** Formats a number like nlohmann::json (integral values as integers, -0 as "-0.0"). */
export function dumpNumber(v: number): string {
  if (Number.isSafeInteger(v)) return Object.is(v, -0) ? '-0.0' : String(v);
  if (!Number.isFinite(v)) return 'null';
  return formatDouble(v);
}

/**
 * The layout of nlohmann's `dtoa` (Grisu2 digits, which JS's shortest round-trip digits match):
 * value = 0.d1…dk × 10^n.
 */
function formatDouble(v: number): string {
  const neg = v < 0;
  const s = String(neg ? -v : v);
  let mantissa = s;
  let exp = 0;
  const e = s.indexOf('e');
  if (e >= 0) {
    mantissa = s.slice(0, e);
    exp = Number(s.slice(e + 1));
  }
  const dot = mantissa.indexOf('.');
  let intPart = dot >= 0 ? mantissa.slice(0, dot) : mantissa;
  const fracPart = dot >= 0 ? mantissa.slice(dot + 1) : '';
  let digits = intPart + fracPart;
  let n = intPart.length + exp; // decimal point position
  // strip leading zeros (e.g. "0.001")
  let lead = 0;
  while (lead < digits.length - 1 && digits[lead] === '0') lead++;
  digits = digits.slice(lead);
  n -= lead;
  // strip trailing zeros (e.g. "1500" from toString of large integral values)
  let end = digits.length;
  while (end > 1 && digits[end - 1] === '0') end--;
  digits = digits.slice(0, end);
  intPart = '';
  const k = digits.length;
  let out: string;
  if (k <= n && n <= 15) out = digits + '0'.repeat(n - k) + '.0';
  else if (0 < n && n <= 15) out = digits.slice(0, n) + '.' + digits.slice(n);
  else if (-4 < n && n <= 0) out = '0.' + '0'.repeat(-n) + digits;
  else {
    const x = n - 1;
    const ax = Math.abs(x);
    out = digits[0] + (k > 1 ? '.' + digits.slice(1) : '') + 'e' + (x < 0 ? '-' : '+') + (ax < 10 ? '0' : '') + ax;
  }
  return neg ? '-' + out : out;
}

/** Canonical compact text: sorted keys, no whitespace (metadata records). */
export function dumpCompact(value: Json): string {
  switch (typeof value) {
    case 'string':
      return dumpString(value);
    case 'number':
      return dumpNumber(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += dumpCompact(value[i] === undefined ? null : (value[i] as Json));
        }
        return out + ']';
      }
      let out = '{';
      let first = true;
      for (const k of sortedKeys(value)) {
        const v = value[k];
        if (v === undefined) continue;
        out += (first ? '' : ',') + dumpString(k) + ':' + dumpCompact(v);
        first = false;
      }
      return out + '}';
    }
    default:
      throw new DiasporaError(`Could not serialize metadata: unsupported value of type ${typeof value}`, {
        code: ErrorCodes.JSON,
      });
  }
}

/** Canonical pretty text: 2-space indentation, `"key": value`, no trailing newline (component files). */
export function dumpPretty(value: Json, indent = 2, level = 0): string {
  if (value === null || typeof value !== 'object') return dumpCompact(value);
  const pad = ' '.repeat(indent * (level + 1));
  const closePad = ' '.repeat(indent * level);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((v) => pad + dumpPretty(v === undefined ? null : v, indent, level + 1));
    return '[\n' + items.join(',\n') + '\n' + closePad + ']';
  }
  const keys = sortedKeys(value).filter((k) => value[k] !== undefined);
  if (keys.length === 0) return '{}';
  const items = keys.map((k) => pad + dumpString(k) + ': ' + dumpPretty(value[k] as Json, indent, level + 1));
  return '{\n' + items.join(',\n') + '\n' + closePad + '}';
}

/** Deep equality of JSON values; numbers compare by value (`1` equals `1n`). */
export function jsonEquals(a: Json, b: Json): boolean {
  if (a === b) return true;
  const ta = typeof a;
  const tb = typeof b;
  if ((ta === 'number' || ta === 'bigint') && (tb === 'number' || tb === 'bigint')) {
    // eslint-disable-next-line eqeqeq
    return (a as number) == (b as number);
  }
  if (a === null || b === null || ta !== 'object' || tb !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEquals(x, b[i] as Json));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b as JsonObject);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && jsonEquals((a as JsonObject)[k] as Json, (b as JsonObject)[k] as Json));
}

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Converts bigints to numbers (for consumers such as ajv that do not understand bigint). */
export function toPlainNumbers(v: Json): Json {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(toPlainNumbers);
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) setMember(out, k, toPlainNumbers(v[k] as Json));
    return out;
  }
  return v;
}
