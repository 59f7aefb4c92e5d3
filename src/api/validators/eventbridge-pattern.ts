/**
 * EventBridge-style metadata patterns (api.md §5.4), compiled once into a matcher closure.
 *
 * Every pattern error is detected at compile time (creation of the validator), never while
 * matching. Matching never throws and allocates nothing on the common paths.
 *
 * Differences from the reference (only where the reference is wrong, see §5.4 "Fixes"):
 * `wildcard` treats every character other than `*`, `\*`, `\\` literally (no regex engine is
 * involved at all, so there is neither metacharacter leakage nor catastrophic backtracking);
 * `numeric` really checks the list length; a `prefix`/`suffix` `equals-ignore-case` value that is
 * neither a string nor a list is an error.
 */
import { DiasporaError, ErrorCodes, InvalidMetadata } from '../errors.js';
import { compareUtf8, dumpCompact, isJsonObject, type Json, type JsonObject } from '../json.js';

/** A compiled condition applied to a JSON value. */
export type Matcher = (value: Json) => boolean;

const MATCH_ALL: Matcher = () => true;
const MATCH_NONE: Matcher = () => false;

function patternError(message: string): DiasporaError {
  return new DiasporaError(message, { code: ErrorCodes.CONFIG });
}

function ruleError(rule: string, detail: string): DiasporaError {
  return patternError(`Invalid Eventbridge "${rule}" rule: ${detail}`);
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function isPrimitive(v: Json): v is null | boolean | number | bigint | string {
  return v === null || typeof v !== 'object';
}

function isNumber(v: Json): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

/** Folds A–Z to a–z and leaves every other character alone (like the reference's `std::tolower`). */
export function asciiLower(s: string): string {
  // Fast path: nothing to fold.
  if (!/[A-Z]/.test(s)) return s;
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Keys of an object in the order the reference iterates them (nlohmann: sorted by UTF-8 bytes). */
function sortedKeys(obj: JsonObject): string[] {
  return Object.keys(obj).sort(compareUtf8);
}

// ---------------------------------------------------------------------------------------------
// Field lookup

/** A compiled `lookup(v, key)`: the value at the dotted path, or `undefined` when absent. */
type Lookup = (value: Json) => Json | undefined;

function compileLookup(key: string): Lookup {
  const path = key.split('.');
  if (path.length === 1) {
    return (v) => (isJsonObject(v) && hasOwn(v, key) ? (v[key] as Json) : undefined);
  }
  return (v) => {
    let cur: Json = v;
    for (const token of path) {
      if (!isJsonObject(cur) || !hasOwn(cur, token)) return undefined;
      cur = cur[token] as Json;
    }
    return cur;
  };
}

/** A condition on the field at `key` that requires the field to be present. */
function onPresent(lookup: Lookup, cond: Matcher): Matcher {
  return (v) => {
    const x = lookup(v);
    return x !== undefined && cond(x);
  };
}

// ---------------------------------------------------------------------------------------------
// Combinators

function anyOf(list: Matcher[]): Matcher {
  if (list.length === 0) return MATCH_NONE;
  if (list.length === 1) return list[0] as Matcher;
  return (v) => {
    for (const m of list) if (m(v)) return true;
    return false;
  };
}

function allOf(list: Matcher[]): Matcher {
  if (list.length === 0) return MATCH_ALL;
  if (list.length === 1) return list[0] as Matcher;
  return (v) => {
    for (const m of list) if (!m(v)) return false;
    return true;
  };
}

/** Equality with a primitive: JSON equality, numbers by value (`1` = `1.0` = `1n`). */
function equalsPrimitive(p: null | boolean | number | bigint | string): Matcher {
  if (typeof p === 'number' || typeof p === 'bigint') {
    // eslint-disable-next-line eqeqeq
    return (x) => (typeof x === 'number' || typeof x === 'bigint') && x == p;
  }
  return (x) => x === p;
}

// ---------------------------------------------------------------------------------------------
// Rules

function compileAnythingBut(spec: Json): Matcher {
  if (isPrimitive(spec)) {
    const eq = equalsPrimitive(spec);
    return (x) => !eq(x);
  }
  if (Array.isArray(spec)) {
    const eqs: Matcher[] = [];
    for (const p of spec) {
      if (!isPrimitive(p)) throw ruleError('anything-but', 'list should contain only primitive types');
      eqs.push(equalsPrimitive(p));
    }
    const any = anyOf(eqs);
    return (x) => !any(x);
  }
  const inner = compileRule(spec);
  return (x) => !inner(x);
}

/** Extracts the strings of a `prefix`/`suffix` rule; `ignoreCase` for the `equals-ignore-case` form. */
function extractAffixes(spec: Json, rule: 'prefix' | 'suffix'): { ignoreCase: boolean; affixes: string[] } {
  if (typeof spec === 'string') return { ignoreCase: false, affixes: [spec] };
  if (Array.isArray(spec)) {
    const affixes: string[] = [];
    for (const s of spec) {
      // The reference says "prefixes" for both rules; kept for message compatibility.
      if (typeof s !== 'string') throw ruleError(rule, 'list of prefixes should contain only strings');
      affixes.push(s);
    }
    return { ignoreCase: false, affixes };
  }
  if (isJsonObject(spec)) {
    const keys = Object.keys(spec);
    if (keys.length !== 1 || keys[0] !== 'equals-ignore-case') {
      throw ruleError(rule, 'only "equals-ignore-case" is allowed as sub-pattern');
    }
    const v = spec['equals-ignore-case'] as Json;
    if (typeof v === 'string') return { ignoreCase: true, affixes: [asciiLower(v)] };
    if (Array.isArray(v)) {
      const affixes: string[] = [];
      for (const s of v) {
        if (typeof s !== 'string') throw ruleError(rule, 'list in "equals-ignore-case" should contain only strings');
        affixes.push(asciiLower(s));
      }
      return { ignoreCase: true, affixes };
    }
    throw ruleError(rule, '"equals-ignore-case" should be a string or a list of strings');
  }
  throw ruleError(rule, 'pattern should be a string, a list, or an object');
}

function compileAffix(spec: Json, rule: 'prefix' | 'suffix'): Matcher {
  const { ignoreCase, affixes } = extractAffixes(spec, rule);
  const test =
    rule === 'prefix' ? (s: string, a: string) => s.startsWith(a) : (s: string, a: string) => s.endsWith(a);
  return (x) => {
    if (typeof x !== 'string') return false;
    const s = ignoreCase ? asciiLower(x) : x;
    for (const a of affixes) if (test(s, a)) return true;
    return false;
  };
}

function compileEqualsIgnoreCase(spec: Json): Matcher {
  let values: string[];
  if (typeof spec === 'string') values = [asciiLower(spec)];
  else if (Array.isArray(spec)) {
    values = [];
    for (const s of spec) {
      if (typeof s !== 'string') throw ruleError('equals-ignore-case', 'list should contain only strings');
      values.push(asciiLower(s));
    }
  } else throw ruleError('equals-ignore-case', 'pattern should be a string or a list of strings');
  if (values.length === 1) {
    const expected = values[0] as string;
    return (x) => typeof x === 'string' && x.length === expected.length && asciiLower(x) === expected;
  }
  const set = new Set(values);
  return (x) => typeof x === 'string' && set.has(asciiLower(x));
}

type NumericOp = '=' | '>' | '>=' | '<' | '<=';

function compileComparison(op: NumericOp, n: number | bigint): Matcher {
  // Relational operators between number and bigint compare exact mathematical values.
  /* eslint-disable eqeqeq */
  switch (op) {
    case '=':
      return (x) => isNumber(x) && x == n;
    case '>':
      return (x) => isNumber(x) && x > n;
    case '>=':
      return (x) => isNumber(x) && x >= n;
    case '<':
      return (x) => isNumber(x) && x < n;
    case '<=':
      return (x) => isNumber(x) && x <= n;
  }
  /* eslint-enable eqeqeq */
}

function compileNumeric(spec: Json): Matcher {
  if (!Array.isArray(spec) || spec.length % 2 !== 0) {
    throw ruleError('numeric', 'pattern should be a list of even number of elements');
  }
  const conditions: Matcher[] = [];
  for (let i = 0; i < spec.length; i += 2) {
    const op = spec[i] as Json;
    const n = spec[i + 1] as Json;
    if (typeof op !== 'string') throw ruleError('numeric', 'operator should be a string');
    if (!isNumber(n)) throw ruleError('numeric', 'operand should be a number');
    if (op !== '=' && op !== '>' && op !== '>=' && op !== '<' && op !== '<=') {
      throw ruleError('numeric', `unknown operator "${op}"`);
    }
    conditions.push(compileComparison(op, n));
  }
  // An empty list matches any (present) value, as in the reference.
  return allOf(conditions);
}

function compileOr(spec: Json): Matcher {
  if (!Array.isArray(spec)) throw ruleError('$or', 'pattern should be a list of objects');
  const alternatives: Matcher[] = [];
  for (const p of spec) {
    if (!isJsonObject(p)) throw ruleError('$or', 'pattern should be a list of objects');
    alternatives.push(compilePattern(p));
  }
  return anyOf(alternatives);
}

/**
 * `*` matches any run of characters (possibly empty), `\*` a literal `*`, `\\` a literal `\`;
 * every other character (including a `\` before anything else) is literal. Full match.
 */
function compileWildcard(spec: Json): Matcher {
  if (typeof spec !== 'string') throw ruleError('wildcard', 'pattern should be a string');
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i];
    if (c === '\\' && (spec[i + 1] === '*' || spec[i + 1] === '\\')) {
      cur += spec[i + 1];
      i++;
    } else if (c === '*') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  if (parts.length === 1) {
    const literal = parts[0] as string;
    return (x) => x === literal;
  }
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const minLength = first.length + last.length;
  return (x) => {
    if (typeof x !== 'string' || x.length < minLength) return false;
    if (!x.startsWith(first) || !x.endsWith(last)) return false;
    // Greedy leftmost placement of the middle parts is optimal for `*`-only globs.
    let pos = first.length;
    const end = x.length - last.length;
    for (const p of middle) {
      const at = x.indexOf(p, pos);
      if (at < 0 || at + p.length > end) return false;
      pos = at + p.length;
    }
    return true;
  };
}

/** The order in which a rule object's key is chosen (the reference's `matchRule`). */
const RULES: ReadonlyArray<[string, (spec: Json) => Matcher]> = [
  ['anything-but', compileAnythingBut],
  ['prefix', (s) => compileAffix(s, 'prefix')],
  ['suffix', (s) => compileAffix(s, 'suffix')],
  ['equals-ignore-case', compileEqualsIgnoreCase],
  ['numeric', compileNumeric],
  ['$or', compileOr],
  ['wildcard', compileWildcard],
];

/** Compiles a rule object (applied to a present value). */
function compileRule(rule: Json): Matcher {
  if (isJsonObject(rule)) {
    for (const [name, compile] of RULES) {
      if (hasOwn(rule, name)) return compile(rule[name] as Json);
    }
  }
  throw patternError(`Invalid Eventbridge pattern: unexpected rule: ${dumpCompact(rule)}`);
}

// ---------------------------------------------------------------------------------------------
// Patterns

function compileField(key: string, spec: Json): Matcher {
  const lookup = compileLookup(key);
  if (isPrimitive(spec)) return onPresent(lookup, equalsPrimitive(spec));
  if (isJsonObject(spec)) return onPresent(lookup, compilePattern(spec));
  // Array: a list of possible values or a list of one-key rule objects.
  let hasPrimitives = false;
  let hasObjects = false;
  for (const item of spec) {
    if (isPrimitive(item)) {
      hasPrimitives = true;
      if (hasObjects) throw patternError('Invalid Eventbridge pattern: cannot mix primitives with complex conditions');
    } else if (isJsonObject(item)) {
      hasObjects = true;
      if (hasPrimitives) throw patternError('Invalid Eventbridge pattern: cannot mix primitives with complex conditions');
      if (Object.keys(item).length !== 1) {
        throw patternError('Invalid Eventbridge pattern: each rule can only have one statement');
      }
    } else {
      throw patternError('Invalid Eventbridge pattern: expected object or primitive');
    }
  }
  if (hasPrimitives) {
    return onPresent(lookup, anyOf((spec as Array<null | boolean | number | bigint | string>).map(equalsPrimitive)));
  }
  const alternatives: Matcher[] = [];
  for (const item of spec as JsonObject[]) {
    if (hasOwn(item, 'exists')) {
      const shouldExist = item['exists'] as Json;
      if (typeof shouldExist !== 'boolean') {
        throw patternError('Invalid Eventbridge "exists" rule: expected boolean value');
      }
      alternatives.push(shouldExist ? (v) => lookup(v) !== undefined : (v) => lookup(v) === undefined);
    } else {
      alternatives.push(onPresent(lookup, compileRule(item)));
    }
  }
  return anyOf(alternatives); // an empty list never matches
}

function compilePattern(pattern: Json): Matcher {
  if (!isJsonObject(pattern)) throw patternError('Invalid Eventbridge pattern: expected object');
  const conditions: Matcher[] = [];
  for (const key of sortedKeys(pattern)) conditions.push(compileField(key, pattern[key] as Json));
  return allOf(conditions);
}

/**
 * Compiles an EventBridge pattern into a predicate. Throws a `DiasporaError` (code `CONFIG`) with
 * the exact text of api.md §5.4 for any invalid pattern.
 */
export function compileEventbridgePattern(pattern: Json): (value: Json) => boolean {
  return compilePattern(pattern);
}

/**
 * Creates the matcher of an `eventbridge` validator configuration `{"type":"eventbridge","schema":…}`:
 * raises the creation `InvalidMetadata` errors of §5.4, then compiles `config.schema`.
 */
export function eventbridgeFromConfig(config: Json): (value: Json) => boolean {
  if (!isJsonObject(config) || !hasOwn(config, 'schema')) {
    throw new InvalidMetadata('Metadata object does not contain a "schema" field for EventbridgeValidator');
  }
  const schema = config['schema'] as Json;
  if (!isJsonObject(schema)) {
    throw new InvalidMetadata('"schema" field in EventbridgeValidator configuration should be an object');
  }
  return compilePattern(schema);
}

/** The rejection message of the eventbridge validator. */
export const EVENTBRIDGE_REJECTION = 'Metadata object does not satisfy eventbridge pattern';
