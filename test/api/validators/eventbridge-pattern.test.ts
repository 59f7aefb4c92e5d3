import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  compileEventbridgePattern,
  eventbridgeFromConfig,
  asciiLower,
  EVENTBRIDGE_REJECTION,
} from '../../../src/api/validators/eventbridge-pattern.js';
import { DiasporaError, ErrorCodes, InvalidMetadata } from '../../../src/api/errors.js';
import { parseJson, type Json } from '../../../src/api/json.js';
import { fixturesDir } from '../../helpers/fixtures.js';

/** Compiles `pattern` and applies it to `value`. */
function m(pattern: Json, value: Json): boolean {
  return compileEventbridgePattern(pattern)(value);
}

/** Asserts that compiling `pattern` throws a DiasporaError (not InvalidMetadata) with exactly `message`. */
function rejectsPattern(pattern: Json, message: string): void {
  assert.throws(
    () => compileEventbridgePattern(pattern),
    (err: unknown) => {
      assert.ok(err instanceof DiasporaError, 'expected a DiasporaError');
      assert.ok(!(err instanceof InvalidMetadata), 'pattern errors are not InvalidMetadata');
      assert.equal(err.message, message);
      assert.equal(err.code, ErrorCodes.CONFIG);
      return true;
    },
  );
}

describe('eventbridge: pattern shape', () => {
  test('pattern must be an object', () => {
    for (const p of [null, 1, 'x', true, [], [{}], 2n] as Json[]) {
      rejectsPattern(p, 'Invalid Eventbridge pattern: expected object');
    }
  });

  test('empty pattern matches anything', () => {
    const f = compileEventbridgePattern({});
    assert.equal(f({}), true);
    assert.equal(f(null), true);
    assert.equal(f([1, 2]), true);
    assert.equal(f('str'), true);
  });

  test('non-object metadata: every field is absent', () => {
    assert.equal(m({ a: 1 }, [1]), false);
    assert.equal(m({ a: 1 }, 'a'), false);
    assert.equal(m({ a: [{ exists: false }] }, 'a'), true);
    assert.equal(m({ 0: 1 }, [1]), false, 'arrays are never searched');
  });

  test('result is AND over the entries', () => {
    const p: Json = { a: 1, b: 'x' };
    assert.equal(m(p, { a: 1, b: 'x' }), true);
    assert.equal(m(p, { a: 1, b: 'y' }), false);
    assert.equal(m(p, { a: 2, b: 'x' }), false);
    assert.equal(m(p, { a: 1 }), false);
  });
});

describe('eventbridge: primitives', () => {
  test('string equality', () => {
    assert.equal(m({ a: 'x' }, { a: 'x' }), true);
    assert.equal(m({ a: 'x' }, { a: 'X' }), false);
    assert.equal(m({ a: 'x' }, { a: ['x'] }), false);
    assert.equal(m({ a: 'x' }, { b: 'x' }), false);
  });

  test('numbers compare by value (1 = 1.0 = 1n)', () => {
    assert.equal(m({ a: 1 }, { a: 1 }), true);
    assert.equal(m({ a: 1 }, { a: 1.0 }), true);
    assert.equal(m({ a: 1 }, { a: 1n }), true);
    assert.equal(m({ a: 1n }, { a: 1 }), true);
    assert.equal(m({ a: 9223372036854775807n }, { a: 9223372036854775807n }), true);
    assert.equal(m({ a: 9223372036854775807n }, { a: 9223372036854775806n }), false);
    assert.equal(m({ a: 1 }, { a: 1.5 }), false);
    assert.equal(m({ a: 1 }, { a: '1' }), false);
    assert.equal(m({ a: 1 }, { a: true }), false);
  });

  test('booleans and null', () => {
    assert.equal(m({ a: true }, { a: true }), true);
    assert.equal(m({ a: true }, { a: false }), false);
    assert.equal(m({ a: true }, { a: 1 }), false);
    assert.equal(m({ a: null }, { a: null }), true);
    assert.equal(m({ a: null }, {}), false, 'null pattern needs the field present');
    assert.equal(m({ a: null }, { a: 0 }), false);
  });

  test('own properties only (no prototype lookups)', () => {
    assert.equal(m({ constructor: [{ exists: true }] }, {}), false);
    assert.equal(m({ toString: [{ exists: false }] }, {}), true);
    const md = parseJson('{"__proto__": 5}');
    assert.equal(m(parseJson('{"__proto__": 5}'), md), true);
    assert.equal(m(parseJson('{"__proto__": 5}'), {}), false);
  });
});

describe('eventbridge: nested objects and dotted keys', () => {
  test('nested pattern', () => {
    const p: Json = { detail: { unit: 'c', t: [{ numeric: ['>', 0] }] } };
    assert.equal(m(p, { detail: { unit: 'c', t: 5 } }), true);
    assert.equal(m(p, { detail: { unit: 'c', t: -5 } }), false);
    assert.equal(m(p, { detail: { unit: 'f', t: 5 } }), false);
    assert.equal(m(p, { detail: 'c' }), false);
    assert.equal(m(p, {}), false);
  });

  test('empty nested pattern: field present with any value', () => {
    assert.equal(m({ a: {} }, { a: 3 }), true);
    assert.equal(m({ a: {} }, { a: null }), true);
    assert.equal(m({ a: {} }, {}), false);
  });

  test('dotted keys descend objects', () => {
    assert.equal(m({ 'a.b.c': 1 }, { a: { b: { c: 1 } } }), true);
    assert.equal(m({ 'a.b.c': 1 }, { a: { b: { c: 2 } } }), false);
    assert.equal(m({ 'a.b.c': 1 }, { 'a.b.c': 1 }), false, 'the dotted key is a path, not a member name');
    assert.equal(m({ 'a.b': 1 }, { a: 5 }), false, 'non-object on the way = absent');
    assert.equal(m({ 'a.0': 1 }, { a: [1] }), false, 'arrays are never searched');
    assert.equal(m({ 'a.b': [{ exists: false }] }, { a: [{ b: 1 }] }), true);
    assert.equal(m({ 'a.b': { c: 'x' } }, { a: { b: { c: 'x' } } }), true);
  });
});

describe('eventbridge: arrays', () => {
  test('array of primitives = one of', () => {
    const p: Json = { a: ['x', 2, null, true] };
    assert.equal(m(p, { a: 'x' }), true);
    assert.equal(m(p, { a: 2.0 }), true);
    assert.equal(m(p, { a: 2n }), true);
    assert.equal(m(p, { a: null }), true);
    assert.equal(m(p, { a: true }), true);
    assert.equal(m(p, { a: false }), false);
    assert.equal(m(p, { a: 'y' }), false);
    assert.equal(m(p, {}), false);
    assert.equal(m(p, { a: ['x'] }), false);
  });

  test('empty array never matches', () => {
    assert.equal(m({ a: [] }, { a: 1 }), false);
    assert.equal(m({ a: [] }, { a: [] }), false);
    assert.equal(m({ a: [] }, {}), false);
  });

  test('array of rules = OR', () => {
    const p: Json = { a: [{ prefix: 'x' }, { numeric: ['>', 10] }] };
    assert.equal(m(p, { a: 'xyz' }), true);
    assert.equal(m(p, { a: 11 }), true);
    assert.equal(m(p, { a: 5 }), false);
    assert.equal(m(p, { a: 'yx' }), false);
    assert.equal(m(p, {}), false);
  });

  test('array errors', () => {
    rejectsPattern({ a: [1, { prefix: 'x' }] }, 'Invalid Eventbridge pattern: cannot mix primitives with complex conditions');
    rejectsPattern({ a: [{ prefix: 'x' }, 'y'] }, 'Invalid Eventbridge pattern: cannot mix primitives with complex conditions');
    rejectsPattern({ a: [[1]] }, 'Invalid Eventbridge pattern: expected object or primitive');
    rejectsPattern({ a: ['x', []] }, 'Invalid Eventbridge pattern: expected object or primitive');
    rejectsPattern({ a: [{ prefix: 'x', suffix: 'y' }] }, 'Invalid Eventbridge pattern: each rule can only have one statement');
    rejectsPattern({ a: [{}] }, 'Invalid Eventbridge pattern: each rule can only have one statement');
    // element checks run in order: the mix is detected before the size of the second element
    rejectsPattern({ a: [1, {}] }, 'Invalid Eventbridge pattern: cannot mix primitives with complex conditions');
  });

  test('errors are raised for nested patterns too', () => {
    rejectsPattern({ a: { b: [[1]] } }, 'Invalid Eventbridge pattern: expected object or primitive');
  });
});

describe('eventbridge: exists', () => {
  test('exists true / false', () => {
    assert.equal(m({ a: [{ exists: true }] }, { a: null }), true);
    assert.equal(m({ a: [{ exists: true }] }, { a: false }), true);
    assert.equal(m({ a: [{ exists: true }] }, {}), false);
    assert.equal(m({ a: [{ exists: false }] }, {}), true);
    assert.equal(m({ a: [{ exists: false }] }, { a: 0 }), false);
    assert.equal(m({ 'a.b': [{ exists: true }] }, { a: { b: 1 } }), true);
    assert.equal(m({ 'a.b': [{ exists: true }] }, { a: { c: 1 } }), false);
  });

  test('exists combined with another rule (OR)', () => {
    const p: Json = { a: [{ exists: false }, { prefix: 'ok' }] };
    assert.equal(m(p, {}), true);
    assert.equal(m(p, { a: 'ok-1' }), true);
    assert.equal(m(p, { a: 'no' }), false);
  });

  test('non-boolean exists', () => {
    for (const v of [1, 'true', null, [true], {}] as Json[]) {
      rejectsPattern({ a: [{ exists: v }] }, 'Invalid Eventbridge "exists" rule: expected boolean value');
    }
  });
});

describe('eventbridge: anything-but', () => {
  test('primitive', () => {
    const p: Json = { a: [{ 'anything-but': 'x' }] };
    assert.equal(m(p, { a: 'y' }), true);
    assert.equal(m(p, { a: 'x' }), false);
    assert.equal(m(p, { a: 1 }), true, 'another type counts as different');
    assert.equal(m(p, { a: { x: 1 } }), true);
    assert.equal(m(p, {}), false, 'needs the field present');
    assert.equal(m({ a: [{ 'anything-but': 1 }] }, { a: 1.0 }), false);
    assert.equal(m({ a: [{ 'anything-but': 1 }] }, { a: 1n }), false);
    assert.equal(m({ a: [{ 'anything-but': 1 }] }, { a: 2 }), true);
    assert.equal(m({ a: [{ 'anything-but': null }] }, { a: null }), false);
    assert.equal(m({ a: [{ 'anything-but': false }] }, { a: true }), true);
  });

  test('list of primitives', () => {
    const p: Json = { a: [{ 'anything-but': ['x', 3] }] };
    assert.equal(m(p, { a: 'x' }), false);
    assert.equal(m(p, { a: 3n }), false);
    assert.equal(m(p, { a: 'y' }), true);
    assert.equal(m(p, { a: 4 }), true);
    assert.equal(m({ a: [{ 'anything-but': [] }] }, { a: 'x' }), true, 'empty list excludes nothing');
  });

  test('object = NOT(rule)', () => {
    const p: Json = { a: [{ 'anything-but': { prefix: 'x' } }] };
    assert.equal(m(p, { a: 'xy' }), false);
    assert.equal(m(p, { a: 'yx' }), true);
    assert.equal(m(p, { a: 5 }), true, 'a non-string does not have the prefix');
    assert.equal(m(p, {}), false);
    const n: Json = { a: [{ 'anything-but': { numeric: ['>=', 0, '<', 10] } }] };
    assert.equal(m(n, { a: 5 }), false);
    assert.equal(m(n, { a: 10 }), true);
    const w: Json = { a: [{ 'anything-but': { wildcard: 'a*z' } }] };
    assert.equal(m(w, { a: 'abcz' }), false);
    assert.equal(m(w, { a: 'abc' }), true);
    const e: Json = { a: [{ 'anything-but': { 'equals-ignore-case': ['AB', 'cd'] } }] };
    assert.equal(m(e, { a: 'ab' }), false);
    assert.equal(m(e, { a: 'CD' }), false);
    assert.equal(m(e, { a: 'ef' }), true);
    const dbl: Json = { a: [{ 'anything-but': { 'anything-but': 'x' } }] };
    assert.equal(m(dbl, { a: 'x' }), true);
    assert.equal(m(dbl, { a: 'y' }), false);
  });

  test('object rule chosen by key order (anything-but > prefix > suffix > …)', () => {
    // A multi-key object is possible only inside anything-but: "prefix" wins over "suffix"/"wildcard".
    const p: Json = { a: [{ 'anything-but': { wildcard: '*', suffix: 'z', prefix: 'a' } }] };
    assert.equal(m(p, { a: 'abc' }), false);
    assert.equal(m(p, { a: 'xyz' }), true, 'suffix and wildcard are not applied');
    const q: Json = { a: [{ 'anything-but': { wildcard: 'q*', numeric: ['>', 1] } }] };
    assert.equal(m(q, { a: 2 }), false);
    assert.equal(m(q, { a: 'qq' }), true, 'numeric is chosen before wildcard');
  });

  test('errors', () => {
    rejectsPattern({ a: [{ 'anything-but': ['x', ['y']] }] }, 'Invalid Eventbridge "anything-but" rule: list should contain only primitive types');
    rejectsPattern({ a: [{ 'anything-but': [{}] }] }, 'Invalid Eventbridge "anything-but" rule: list should contain only primitive types');
    rejectsPattern({ a: [{ 'anything-but': { exists: true } }] }, 'Invalid Eventbridge pattern: unexpected rule: {"exists":true}');
    rejectsPattern({ a: [{ 'anything-but': {} }] }, 'Invalid Eventbridge pattern: unexpected rule: {}');
    rejectsPattern({ a: [{ 'anything-but': { prefix: 3 } }] }, 'Invalid Eventbridge "prefix" rule: pattern should be a string, a list, or an object');
  });
});

describe('eventbridge: prefix / suffix', () => {
  test('prefix string and list', () => {
    assert.equal(m({ a: [{ prefix: 'ev-' }] }, { a: 'ev-1' }), true);
    assert.equal(m({ a: [{ prefix: 'ev-' }] }, { a: 'ev-' }), true);
    assert.equal(m({ a: [{ prefix: 'ev-' }] }, { a: 'EV-1' }), false);
    assert.equal(m({ a: [{ prefix: 'ev-' }] }, { a: 'ev' }), false);
    assert.equal(m({ a: [{ prefix: 'ev-' }] }, { a: 5 }), false);
    assert.equal(m({ a: [{ prefix: '' }] }, { a: '' }), true);
    assert.equal(m({ a: [{ prefix: ['a', 'b'] }] }, { a: 'bz' }), true);
    assert.equal(m({ a: [{ prefix: ['a', 'b'] }] }, { a: 'cz' }), false);
    assert.equal(m({ a: [{ prefix: [] }] }, { a: 'cz' }), false);
  });

  test('suffix string and list', () => {
    assert.equal(m({ a: [{ suffix: '.png' }] }, { a: 'x.png' }), true);
    assert.equal(m({ a: [{ suffix: '.png' }] }, { a: 'x.PNG' }), false);
    assert.equal(m({ a: [{ suffix: '.png' }] }, { a: 'png' }), false);
    assert.equal(m({ a: [{ suffix: ['.jpg', '.png'] }] }, { a: 'x.jpg' }), true);
    assert.equal(m({ a: [{ suffix: ['.jpg', '.png'] }] }, { a: 'x.gif' }), false);
  });

  test('equals-ignore-case sub-pattern (ASCII folding only)', () => {
    assert.equal(m({ a: [{ prefix: { 'equals-ignore-case': 'Ev-' } }] }, { a: 'eV-1' }), true);
    assert.equal(m({ a: [{ prefix: { 'equals-ignore-case': ['X', 'ev-'] } }] }, { a: 'EV-1' }), true);
    assert.equal(m({ a: [{ prefix: { 'equals-ignore-case': 'ev-' } }] }, { a: 'e-1' }), false);
    assert.equal(m({ a: [{ suffix: { 'equals-ignore-case': '.PNG' } }] }, { a: 'x.png' }), true);
    assert.equal(m({ a: [{ suffix: { 'equals-ignore-case': ['.png'] } }] }, { a: 'x.Png' }), true);
    assert.equal(m({ a: [{ suffix: { 'equals-ignore-case': '.png' } }] }, { a: 'x.pn' }), false);
    // Non-ASCII letters are not folded.
    assert.equal(m({ a: [{ prefix: { 'equals-ignore-case': 'É' } }] }, { a: 'é' }), false);
    assert.equal(m({ a: [{ prefix: { 'equals-ignore-case': 'É' } }] }, { a: 'É' }), true);
  });

  test('prefix errors', () => {
    rejectsPattern({ a: [{ prefix: ['a', 1] }] }, 'Invalid Eventbridge "prefix" rule: list of prefixes should contain only strings');
    rejectsPattern({ a: [{ prefix: { x: 'a' } }] }, 'Invalid Eventbridge "prefix" rule: only "equals-ignore-case" is allowed as sub-pattern');
    rejectsPattern({ a: [{ prefix: { 'equals-ignore-case': 'a', x: 1 } }] }, 'Invalid Eventbridge "prefix" rule: only "equals-ignore-case" is allowed as sub-pattern');
    rejectsPattern({ a: [{ prefix: {} }] }, 'Invalid Eventbridge "prefix" rule: only "equals-ignore-case" is allowed as sub-pattern');
    rejectsPattern({ a: [{ prefix: { 'equals-ignore-case': ['a', 2] } }] }, 'Invalid Eventbridge "prefix" rule: list in "equals-ignore-case" should contain only strings');
    rejectsPattern({ a: [{ prefix: 5 }] }, 'Invalid Eventbridge "prefix" rule: pattern should be a string, a list, or an object');
    rejectsPattern({ a: [{ prefix: null }] }, 'Invalid Eventbridge "prefix" rule: pattern should be a string, a list, or an object');
  });

  test('suffix errors (the reference says "list of prefixes" here too)', () => {
    rejectsPattern({ a: [{ suffix: [1] }] }, 'Invalid Eventbridge "suffix" rule: list of prefixes should contain only strings');
    rejectsPattern({ a: [{ suffix: { nope: 'a' } }] }, 'Invalid Eventbridge "suffix" rule: only "equals-ignore-case" is allowed as sub-pattern');
    rejectsPattern({ a: [{ suffix: { 'equals-ignore-case': [true] } }] }, 'Invalid Eventbridge "suffix" rule: list in "equals-ignore-case" should contain only strings');
    rejectsPattern({ a: [{ suffix: true }] }, 'Invalid Eventbridge "suffix" rule: pattern should be a string, a list, or an object');
  });

  test('fix: bad equals-ignore-case value is an error (reference: silently never matches)', () => {
    rejectsPattern({ a: [{ prefix: { 'equals-ignore-case': 5 } }] }, 'Invalid Eventbridge "prefix" rule: "equals-ignore-case" should be a string or a list of strings');
    rejectsPattern({ a: [{ suffix: { 'equals-ignore-case': null } }] }, 'Invalid Eventbridge "suffix" rule: "equals-ignore-case" should be a string or a list of strings');
    rejectsPattern({ a: [{ prefix: { 'equals-ignore-case': { x: 'y' } } }] }, 'Invalid Eventbridge "prefix" rule: "equals-ignore-case" should be a string or a list of strings');
  });
});

describe('eventbridge: equals-ignore-case', () => {
  test('string and list', () => {
    assert.equal(m({ a: [{ 'equals-ignore-case': 'EU-West' }] }, { a: 'eu-west' }), true);
    assert.equal(m({ a: [{ 'equals-ignore-case': 'EU-West' }] }, { a: 'EU-WEST' }), true);
    assert.equal(m({ a: [{ 'equals-ignore-case': 'EU-West' }] }, { a: 'eu-west-1' }), false);
    assert.equal(m({ a: [{ 'equals-ignore-case': 'EU-West' }] }, { a: 5 }), false);
    assert.equal(m({ a: [{ 'equals-ignore-case': ['a', 'B'] }] }, { a: 'b' }), true);
    assert.equal(m({ a: [{ 'equals-ignore-case': ['a', 'B'] }] }, { a: 'c' }), false);
    assert.equal(m({ a: [{ 'equals-ignore-case': [] }] }, { a: 'c' }), false);
    assert.equal(m({ a: [{ 'equals-ignore-case': 'ÄB' }] }, { a: 'äb' }), false, 'ASCII folding only');
    assert.equal(m({ a: [{ 'equals-ignore-case': 'ÄB' }] }, { a: 'Äb' }), true);
  });

  test('asciiLower folds A–Z only', () => {
    assert.equal(asciiLower('AbZ-ÀÉ-İ'), 'abz-ÀÉ-İ');
    assert.equal(asciiLower('abc'), 'abc');
  });

  test('errors', () => {
    rejectsPattern({ a: [{ 'equals-ignore-case': ['a', 1] }] }, 'Invalid Eventbridge "equals-ignore-case" rule: list should contain only strings');
    rejectsPattern({ a: [{ 'equals-ignore-case': 1 }] }, 'Invalid Eventbridge "equals-ignore-case" rule: pattern should be a string or a list of strings');
    rejectsPattern({ a: [{ 'equals-ignore-case': { x: 'a' } }] }, 'Invalid Eventbridge "equals-ignore-case" rule: pattern should be a string or a list of strings');
  });
});

describe('eventbridge: numeric', () => {
  test('every operator', () => {
    const check = (op: string, n: Json, x: Json): boolean => m({ a: [{ numeric: [op, n] }] }, { a: x });
    assert.equal(check('=', 5, 5), true);
    assert.equal(check('=', 5, 5.0), true);
    assert.equal(check('=', 5, 5.5), false);
    assert.equal(check('>', 5, 6), true);
    assert.equal(check('>', 5, 5), false);
    assert.equal(check('>=', 5, 5), true);
    assert.equal(check('>=', 5, 4.999), false);
    assert.equal(check('<', 5, 4), true);
    assert.equal(check('<', 5, 5), false);
    assert.equal(check('<=', 5, 5), true);
    assert.equal(check('<=', 5, 5.001), false);
  });

  test('range (AND of comparisons)', () => {
    const p: Json = { t: [{ numeric: ['>', 0, '<=', 100] }] };
    assert.equal(m(p, { t: 0 }), false);
    assert.equal(m(p, { t: 0.1 }), true);
    assert.equal(m(p, { t: 100 }), true);
    assert.equal(m(p, { t: 100.5 }), false);
    assert.equal(m(p, { t: '50' }), false, 'non-numbers never satisfy a comparison');
    assert.equal(m(p, { t: true }), false);
    assert.equal(m(p, {}), false);
  });

  test('bigint and number mixed compare exactly', () => {
    assert.equal(m({ a: [{ numeric: ['>', 9007199254740992] }] }, { a: 9007199254740993n }), true);
    assert.equal(m({ a: [{ numeric: ['=', 9007199254740993n] }] }, { a: 9007199254740993n }), true);
    assert.equal(m({ a: [{ numeric: ['=', 9007199254740993n] }] }, { a: 9007199254740992 }), false);
    assert.equal(m({ a: [{ numeric: ['<', 18446744073709551615n] }] }, { a: 1.5 }), true);
    assert.equal(m({ a: [{ numeric: ['>=', 1.5] }] }, { a: 2n }), true);
    assert.equal(m({ a: [{ numeric: ['>=', 2.5] }] }, { a: 2n }), false);
    assert.equal(m({ a: [{ numeric: ['=', 1] }] }, { a: 1n }), true);
  });

  test('empty list matches any present value (as the reference)', () => {
    assert.equal(m({ a: [{ numeric: [] }] }, { a: 3 }), true);
    assert.equal(m({ a: [{ numeric: [] }] }, { a: 'x' }), true);
    assert.equal(m({ a: [{ numeric: [] }] }, {}), false);
  });

  test('errors', () => {
    const even = 'Invalid Eventbridge "numeric" rule: pattern should be a list of even number of elements';
    rejectsPattern({ a: [{ numeric: 5 }] }, even);
    rejectsPattern({ a: [{ numeric: '>' }] }, even);
    rejectsPattern({ a: [{ numeric: { '>': 1 } }] }, even);
    // fix over the reference: odd length is an error
    rejectsPattern({ a: [{ numeric: ['>'] }] }, even);
    rejectsPattern({ a: [{ numeric: ['>', 0, '<'] }] }, even);
    rejectsPattern({ a: [{ numeric: [1, 2] }] }, 'Invalid Eventbridge "numeric" rule: operator should be a string');
    rejectsPattern({ a: [{ numeric: ['>', '2'] }] }, 'Invalid Eventbridge "numeric" rule: operand should be a number');
    rejectsPattern({ a: [{ numeric: ['>', true] }] }, 'Invalid Eventbridge "numeric" rule: operand should be a number');
    rejectsPattern({ a: [{ numeric: ['!=', 2] }] }, 'Invalid Eventbridge "numeric" rule: unknown operator "!="');
    rejectsPattern({ a: [{ numeric: ['>', 0, '==', 2] }] }, 'Invalid Eventbridge "numeric" rule: unknown operator "=="');
    // operand type is checked before the operator name (reference order)
    rejectsPattern({ a: [{ numeric: ['~', 'x'] }] }, 'Invalid Eventbridge "numeric" rule: operand should be a number');
  });
});

describe('eventbridge: wildcard', () => {
  const w = (pattern: string, x: Json): boolean => m({ a: [{ wildcard: pattern }] }, { a: x });

  test('star matches any run, full match', () => {
    assert.equal(w('a*z', 'az'), true);
    assert.equal(w('a*z', 'abcz'), true);
    assert.equal(w('a*z', 'abczx'), false);
    assert.equal(w('a*z', 'xabcz'), false);
    assert.equal(w('*', ''), true);
    assert.equal(w('*', 'anything'), true);
    assert.equal(w('**', 'x'), true);
    assert.equal(w('*.png', 'dir/x.png'), true);
    assert.equal(w('*.png', 'x.png.bak'), false);
    assert.equal(w('a*b*c', 'abc'), true);
    assert.equal(w('a*b*c', 'aXbYbZc'), true);
    assert.equal(w('a*b*c', 'acb'), false);
    assert.equal(w('ab*ba', 'aba'), false, 'prefix and suffix may not overlap');
    assert.equal(w('ab*ba', 'abba'), true);
    assert.equal(w('x*', 'x\ny'), true, 'star crosses newlines');
    assert.equal(w('', ''), true);
    assert.equal(w('', 'a'), false);
    assert.equal(w('abc', 'abc'), true);
    assert.equal(w('abc', 'abcd'), false);
    assert.equal(w('*', 1), false, 'non-strings never match');
    assert.equal(m({ a: [{ wildcard: '*' }] }, {}), false);
  });

  test('escapes: \\* literal star, \\\\ literal backslash', () => {
    assert.equal(w('a\\*b', 'a*b'), true);
    assert.equal(w('a\\*b', 'axb'), false);
    assert.equal(w('a\\\\b', 'a\\b'), true);
    assert.equal(w('a\\\\*', 'a\\xyz'), true, '\\\\ then a real star');
    assert.equal(w('a\\\\*', 'axyz'), false);
    assert.equal(w('\\\\\\*', '\\*'), true);
    assert.equal(w('a\\b', 'a\\b'), true, 'a backslash before another character is literal');
    assert.equal(w('a\\', 'a\\'), true, 'a trailing backslash is literal');
  });

  test('fix: regex metacharacters are literal', () => {
    assert.equal(w('a.c', 'a.c'), true);
    assert.equal(w('a.c', 'abc'), false);
    assert.equal(w('a+', 'aaa'), false);
    assert.equal(w('a+', 'a+'), true);
    assert.equal(w('(x|y)*', '(x|y)zz'), true);
    assert.equal(w('(x|y)*', 'xzz'), false);
    assert.equal(w('[ab]?{2}^$', '[ab]?{2}^$'), true);
    assert.equal(w('[ab]', 'a'), false);
  });

  test('no catastrophic backtracking', () => {
    const start = performance.now();
    assert.equal(w('*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
    assert.ok(performance.now() - start < 1000);
  });

  test('errors', () => {
    for (const v of [1, null, ['a*'], { x: 1 }] as Json[]) {
      rejectsPattern({ a: [{ wildcard: v }] }, 'Invalid Eventbridge "wildcard" rule: pattern should be a string');
    }
  });
});

describe('eventbridge: $or', () => {
  test('inside a field list: patterns matched against the field value', () => {
    const p: Json = { d: [{ $or: [{ x: 1 }, { y: [{ numeric: ['<', 10] }] }] }] };
    assert.equal(m(p, { d: { x: 1 } }), true);
    assert.equal(m(p, { d: { y: 5 } }), true);
    assert.equal(m(p, { d: { x: 2, y: 50 } }), false);
    assert.equal(m(p, { d: 1 }), false);
    assert.equal(m(p, {}), false);
    assert.equal(m({ d: [{ $or: [] }] }, { d: {} }), false, 'empty $or never matches');
    assert.equal(m({ d: [{ $or: [{}] }] }, { d: 7 }), true, 'an empty alternative matches');
  });

  test('top-level "$or" is a field name; its objects are unexpected rules', () => {
    rejectsPattern({ $or: [{ a: 1 }, { b: 2 }] }, 'Invalid Eventbridge pattern: unexpected rule: {"a":1}');
    assert.equal(m({ $or: ['x'] }, { $or: 'x' }), true);
    assert.equal(m({ $or: ['x'] }, { a: 'x' }), false);
  });

  test('errors', () => {
    rejectsPattern({ d: [{ $or: { x: 1 } }] }, 'Invalid Eventbridge "$or" rule: pattern should be a list of objects');
    rejectsPattern({ d: [{ $or: [{ x: 1 }, 2] }] }, 'Invalid Eventbridge "$or" rule: pattern should be a list of objects');
    rejectsPattern({ d: [{ $or: [[]] }] }, 'Invalid Eventbridge "$or" rule: pattern should be a list of objects');
    rejectsPattern({ d: [{ $or: 'x' }] }, 'Invalid Eventbridge "$or" rule: pattern should be a list of objects');
    rejectsPattern({ d: [{ $or: [{ x: [[1]] }] }] }, 'Invalid Eventbridge pattern: expected object or primitive');
  });
});

describe('eventbridge: unexpected rule', () => {
  test('compact canonical JSON of the rule object', () => {
    rejectsPattern({ a: [{ foo: 1 }] }, 'Invalid Eventbridge pattern: unexpected rule: {"foo":1}');
    rejectsPattern({ a: [{ 'no-such': { z: [1, 2.5, null], a: 'é"' } }] }, 'Invalid Eventbridge pattern: unexpected rule: {"no-such":{"a":"é\\"","z":[1,2.5,null]}}');
    rejectsPattern({ a: [{ big: 18446744073709551615n }] }, 'Invalid Eventbridge pattern: unexpected rule: {"big":18446744073709551615}');
    rejectsPattern({ a: [{ f: 2.0 }] }, 'Invalid Eventbridge pattern: unexpected rule: {"f":2}');
  });

  test('the first error in key order (UTF-8 sorted) is reported', () => {
    rejectsPattern({ b: [{ foo: 1 }], a: [{ bar: 2 }] }, 'Invalid Eventbridge pattern: unexpected rule: {"bar":2}');
  });
});

describe('eventbridgeFromConfig', () => {
  test('missing schema', () => {
    for (const cfg of [{ type: 'eventbridge' }, {}, null, 'x', [1]] as Json[]) {
      assert.throws(
        () => eventbridgeFromConfig(cfg),
        (err: unknown) =>
          err instanceof InvalidMetadata &&
          err.code === ErrorCodes.INVALID_METADATA &&
          err.message === 'Metadata object does not contain a "schema" field for EventbridgeValidator',
      );
    }
  });

  test('schema not an object', () => {
    for (const schema of [null, 1, 'x', [], [{ a: 1 }], true] as Json[]) {
      assert.throws(
        () => eventbridgeFromConfig({ type: 'eventbridge', schema }),
        (err: unknown) =>
          err instanceof InvalidMetadata &&
          err.message === '"schema" field in EventbridgeValidator configuration should be an object',
      );
    }
  });

  test('compiles the schema; pattern errors are plain DiasporaErrors', () => {
    const f = eventbridgeFromConfig({ type: 'eventbridge', schema: { a: [{ prefix: 'x' }] } });
    assert.equal(f({ a: 'xy' }), true);
    assert.equal(f({ a: 'yx' }), false);
    assert.throws(
      () => eventbridgeFromConfig({ type: 'eventbridge', schema: { a: [{ numeric: ['>'] }] } }),
      (err: unknown) =>
        err instanceof DiasporaError &&
        !(err instanceof InvalidMetadata) &&
        err.message === 'Invalid Eventbridge "numeric" rule: pattern should be a list of even number of elements',
    );
  });

  test('rejection message constant', () => {
    assert.equal(EVENTBRIDGE_REJECTION, 'Metadata object does not satisfy eventbridge pattern');
  });
});

// ---------------------------------------------------------------------------------------------
// Golden fixture replay

function findManifest(): string | undefined {
  const p = join(fixturesDir(), 'files-driver', 'manifest.json');
  return existsSync(p) ? p : undefined;
}

interface FixtureOp {
  op: string;
  push_index?: number;
  metadata_text?: string;
  rejected?: { message: string };
}
interface FixtureTopic {
  name: string;
  create: { validator: Json };
  components: { validator: Json };
  sessions: { ops: FixtureOp[] }[];
}
interface Manifest {
  topics: FixtureTopic[];
  'invalid-examples': { topic: string; push_index: number; metadata_text: string; message: string }[];
}

describe('eventbridge: golden fixture replay', () => {
  const path = findManifest();
  test('fixture manifest is available', () => {
    assert.ok(path !== undefined, 'files-driver/manifest.json not found (set DIASPORA_FIXTURES_DIR)');
  });
  if (path === undefined) return;
  const manifest = parseJson(readFileSync(path, 'utf8')) as unknown as Manifest;
  const topic = manifest.topics.find((t) => t.name === 'eventbridge') as FixtureTopic;

  test('both the creation config and the persisted config compile to the same verdicts', () => {
    assert.ok(topic !== undefined);
    const fromCreate = eventbridgeFromConfig(topic.create.validator);
    const fromPersisted = eventbridgeFromConfig(topic.components.validator);
    let pushes = 0;
    let rejected = 0;
    for (const session of topic.sessions) {
      for (const op of session.ops) {
        if (op.op !== 'push') continue;
        pushes++;
        const md = parseJson(op.metadata_text as string);
        const expected = op.rejected === undefined;
        if (!expected) {
          rejected++;
          assert.equal(op.rejected?.message, EVENTBRIDGE_REJECTION);
        }
        assert.equal(fromCreate(md), expected, `push ${op.push_index}: ${op.metadata_text}`);
        assert.equal(fromPersisted(md), expected, `push ${op.push_index}: ${op.metadata_text}`);
      }
    }
    assert.equal(pushes, 12);
    assert.equal(rejected, 6);
  });

  test('invalid-examples of the eventbridge topic are rejected with the exact message', () => {
    const f = eventbridgeFromConfig(topic.components.validator);
    const examples = manifest['invalid-examples'].filter((e) => e.topic === 'eventbridge');
    assert.equal(examples.length, 6);
    for (const e of examples) {
      assert.equal(f(parseJson(e.metadata_text)), false, `push ${e.push_index}`);
      assert.equal(e.message, EVENTBRIDGE_REJECTION);
    }
  });
});
