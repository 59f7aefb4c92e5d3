/**
 * Dotted options (diaspora-ctl.md §3): `--driver.root_path ./data`, `--topic.num_partitions=4`, ….
 *
 * They are removed from argv by a pre-pass ({@link extractDottedOptions}) before the regular option parser runs,
 * because their names are open-ended and their value is always the next argument, even when it starts with `-`.
 */
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { type Json, type JsonObject, isJsonObject, setMember } from '../api/json.js';
import { CliParseError } from './errors.js';

export const DOTTED_PREFIXES = ['driver', 'topic', 'validator', 'serializer', 'partition-selector'] as const;
export type DottedPrefix = (typeof DOTTED_PREFIXES)[number];

export interface DottedOptions<P extends string = DottedPrefix> {
  /** argv without the dotted options and their values, in the original order. */
  rest: string[];
  /** One object per prefix (`{}` when the prefix was not used). */
  values: Record<P, JsonObject>;
  /** The prefixes for which at least one dotted option was given. */
  given: Set<P>;
}

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)$/;
const LONE_DOT = /^[+-]?\.$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function invalidNumber(text: string): DiasporaError {
  return new DiasporaError(`Invalid numeric value: ${text}`, { code: ErrorCodes.INVALID_ARGUMENT });
}

/**
 * Types the value of a dotted option (diaspora-ctl.md §3 table, first match wins):
 * 1. `^[+-]?(\d+\.?\d*|\.\d+)$`: without `.` an integer (a number within ±(2^53−1), a bigint beyond, beyond the
 *    int64 range → DiasporaError `Invalid numeric value: <v>`); with `.` a float;
 * 2. a lone `.` with an optional sign → DiasporaError `Invalid numeric value: <v>`;
 * 3. contains `,` → array of the comma-separated items (one trailing empty item dropped), each typed by this table;
 * 4. `true` / `false` → boolean;
 * 5. anything else → the string itself.
 */
export function typeDottedValue(text: string): Json {
  if (NUMERIC.test(text)) {
    if (!text.includes('.')) {
      const b = BigInt(text);
      if (b < INT64_MIN || b > INT64_MAX) throw invalidNumber(text);
      if (b >= -SAFE_MAX && b <= SAFE_MAX) return Number(b);
      return b;
    }
    const f = Number(text);
    if (!Number.isFinite(f)) throw invalidNumber(text);
    return f;
  }
  if (LONE_DOT.test(text)) throw invalidNumber(text);
  if (text.includes(',')) {
    const items = text.split(',');
    if (items[items.length - 1] === '') items.pop();
    return items.map(typeDottedValue);
  }
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}

/**
 * Sets `value` at the nested key `path` of `target`, creating objects as needed and replacing non-object values
 * found on the way. Only own properties are considered (keys such as `constructor` or `__proto__` are plain keys).
 */
export function setDottedPath(target: JsonObject, path: readonly string[], value: Json): void {
  let obj = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string;
    const cur = Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
    if (isJsonObject(cur)) obj = cur;
    else {
      const next: JsonObject = {};
      setMember(obj, key, next);
      obj = next;
    }
  }
  setMember(obj, path[path.length - 1] as string, value);
}

/**
 * Removes the dotted options `--<prefix>.<key> <value>` and `--<prefix>.<key>=<value>` from `argv` and builds one
 * object per prefix. The value of the space form is always the next argument, whatever it looks like. Scanning
 * stops at a `--` argument (everything from there on is left in `rest`). Non-dotted options are not interpreted:
 * a dotted-looking argument is treated as a dotted option even where it was meant as another option's value.
 *
 * Errors: {@link CliParseError} `Missing value for <option>` (no argument follows) and
 * `Invalid dotted option <option>: empty key segment` (`--driver.`, `--driver..x`, `--driver.x.`); all of argv
 * is checked for those before any value is typed. Value typing errors ({@link typeDottedValue}) are
 * DiasporaErrors (runtime errors, not parse errors).
 */
export function extractDottedOptions<P extends string = DottedPrefix>(
  argv: readonly string[],
  prefixes: readonly P[] = DOTTED_PREFIXES as unknown as readonly P[],
): DottedOptions<P> {
  const rest: string[] = [];
  const found: { prefix: P; path: string[]; text: string }[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') break;
    const prefix = arg.startsWith('--') ? prefixes.find((p) => arg.startsWith(`--${p}.`)) : undefined;
    if (prefix === undefined) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const option = eq >= 0 ? arg.slice(0, eq) : arg;
    const path = option.slice(prefix.length + 3).split('.');
    if (path.some((seg) => seg === '')) throw new CliParseError(`Invalid dotted option ${option}: empty key segment`);
    let text: string;
    if (eq >= 0) text = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new CliParseError(`Missing value for ${option}`);
      text = argv[++i] as string;
    }
    found.push({ prefix, path, text });
  }
  for (; i < argv.length; i++) rest.push(argv[i] as string);

  const values = {} as Record<P, JsonObject>;
  for (const p of prefixes) values[p] = {};
  const given = new Set<P>();
  for (const { prefix, path, text } of found) {
    setDottedPath(values[prefix], path, typeDottedValue(text));
    given.add(prefix);
  }
  return { rest, values, given };
}
