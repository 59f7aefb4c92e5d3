import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';
import type { Json } from '../../src/api/json.js';
import { ConfigFileOpenError, loadJsonConfigFile, mergePatch, runtimeErrorText } from '../../src/cli/config-files.js';
import { extractDottedOptions } from '../../src/cli/dotted-options.js';

const dir = mkdtempSync(join(tmpdir(), 'diaspora-config-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function file(content: string): string {
  const p = join(dir, `cfg-${counter++}.json`);
  writeFileSync(p, content);
  return p;
}

function jsonParseMessage(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected invalid JSON');
}

function throwsDiaspora(fn: () => unknown, message: string, code: string): DiasporaError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    assert.ok(err instanceof DiasporaError, `expected a DiasporaError, got ${String(err)}`);
    assert.equal(err.message, message);
    assert.equal(err.code, code);
    return true;
  });
  return caught as DiasporaError;
}

// ---------------------------------------------------------------------------------------------
// loadJsonConfigFile

test('reads a JSON object, bigint-safe', () => {
  const p = file('{"root_path": "/data", "n": 4, "big": 12345678901234567890, "nested": {"list": [1, 2.5, true, null]}}');
  assert.deepEqual(loadJsonConfigFile(p), {
    root_path: '/data',
    n: 4,
    big: 12345678901234567890n,
    nested: { list: [1, 2.5, true, null] },
  });
  assert.deepEqual(loadJsonConfigFile(file('{}')), {});
  assert.deepEqual(loadJsonConfigFile(file('\n  {"a": 1}\n')), { a: 1 });
});

test('a leading UTF-8 byte-order mark is ignored', () => {
  assert.deepEqual(loadJsonConfigFile(file('\ufeff{"a": "b"}')), { a: 'b' });
});

test('missing file → "Failed to open config file: <file>", logged without "Error: "', () => {
  const p = join(dir, 'does-not-exist.json');
  const err = throwsDiaspora(() => loadJsonConfigFile(p), `Failed to open config file: ${p}`, ErrorCodes.CONFIG);
  assert.ok(err instanceof ConfigFileOpenError);
  assert.equal(err.name, 'ConfigFileOpenError');
  assert.equal((err as ConfigFileOpenError).file, p);
  assert.equal(((err as ConfigFileOpenError).cause as NodeJS.ErrnoException).code, 'ENOENT');
  assert.equal(runtimeErrorText(err), `Failed to open config file: ${p}`);
  // the path is reported as given (relative here)
  const rel = 'no/such/dir/cfg.json';
  throwsDiaspora(() => loadJsonConfigFile(rel), 'Failed to open config file: no/such/dir/cfg.json', ErrorCodes.CONFIG);
});

test('a directory → "Failed to open config file: <file>"', () => {
  const d = join(dir, 'a-directory');
  mkdirSync(d);
  const err = throwsDiaspora(() => loadJsonConfigFile(d), `Failed to open config file: ${d}`, ErrorCodes.CONFIG);
  assert.ok(err instanceof ConfigFileOpenError);
});

test('a path under a regular file (ENOTDIR, unreadable even for root) → "Failed to open config file: <file>"', () => {
  const p = join(file('{"a": 1}'), 'cfg.json');
  const err = throwsDiaspora(() => loadJsonConfigFile(p), `Failed to open config file: ${p}`, ErrorCodes.CONFIG);
  assert.ok(err instanceof ConfigFileOpenError);
});

test('invalid JSON → "Could not parse JSON: <detail>", logged with "Error: "', () => {
  for (const text of ['{bad', '', '{"a": 1,}', '{"a": 1} x']) {
    const err = throwsDiaspora(() => loadJsonConfigFile(file(text)), `Could not parse JSON: ${jsonParseMessage(text)}`, ErrorCodes.JSON);
    assert.ok(!(err instanceof ConfigFileOpenError));
    assert.equal(runtimeErrorText(err), `Error: Could not parse JSON: ${jsonParseMessage(text)}`);
  }
  // texts with long digit runs or "-0" go through the bigint-safe parser and its messages
  throwsDiaspora(
    () => loadJsonConfigFile(file('{"a": 12345678901234567890,\n "b": }')),
    'Could not parse JSON: unexpected character \'}\' at line 2, column 7',
    ErrorCodes.JSON,
  );
});

test('invalid UTF-8 (e.g. a Latin-1 file) → "Could not parse JSON: invalid UTF-8", not a value with U+FFFD in it', () => {
  const p = join(dir, `cfg-${counter++}.json`);
  writeFileSync(p, Buffer.concat([Buffer.from('{"root_path": "./caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
  const err = throwsDiaspora(() => loadJsonConfigFile(p), 'Could not parse JSON: invalid UTF-8', ErrorCodes.JSON);
  assert.equal(runtimeErrorText(err), 'Error: Could not parse JSON: invalid UTF-8');
});

test('a non-object root → "Config file <file> must contain a JSON object"', () => {
  for (const text of ['[1, 2]', '"text"', 'null', '3', 'true', '12345678901234567890']) {
    const p = file(text);
    const err = throwsDiaspora(() => loadJsonConfigFile(p), `Config file ${p} must contain a JSON object`, ErrorCodes.CONFIG);
    assert.equal(runtimeErrorText(err), `Error: Config file ${p} must contain a JSON object`);
  }
});

test('runtimeErrorText for other values', () => {
  assert.equal(runtimeErrorText(new Error('Topic already exists: t1')), 'Error: Topic already exists: t1');
  assert.equal(runtimeErrorText('plain'), 'Error: plain');
});

// ---------------------------------------------------------------------------------------------
// mergePatch (RFC 7386)

test('RFC 7386 section 3 example', () => {
  const target: Json = {
    title: 'Goodbye!',
    author: { givenName: 'John', familyName: 'Doe' },
    tags: ['example', 'sample'],
    content: 'This will be unchanged',
  };
  const patch: Json = {
    title: 'Hello!',
    phoneNumber: '+01-123-456-7890',
    author: { familyName: null },
    tags: ['example'],
  };
  assert.deepEqual(mergePatch(target, patch), {
    title: 'Hello!',
    author: { givenName: 'John' },
    tags: ['example'],
    content: 'This will be unchanged',
    phoneNumber: '+01-123-456-7890',
  });
});

test('RFC 7386 appendix A test cases', () => {
  const cases: [Json, Json, Json][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of cases) {
    assert.deepEqual(mergePatch(target, patch), expected, `${JSON.stringify(target)} + ${JSON.stringify(patch)}`);
  }
});

test('merge keeps the order of the target keys, appends new keys, and does not modify its inputs', () => {
  const target = { a: 1, b: { c: 2, d: [1, 2] }, e: 'x' };
  const patch = { b: { d: [3], f: null, g: { h: 1 } }, z: 12345678901234567890n, a: null };
  const targetCopy = structuredClone(target);
  const patchCopy = structuredClone(patch);
  const out = mergePatch(target, patch);
  assert.deepEqual(out, { b: { c: 2, d: [3], g: { h: 1 } }, e: 'x', z: 12345678901234567890n });
  assert.deepEqual(Object.keys(out as object), ['b', 'e', 'z']);
  assert.deepEqual(target, targetCopy);
  assert.deepEqual(patch, patchCopy);
});

test('merge treats __proto__ and constructor as plain keys', () => {
  const patch = JSON.parse('{"__proto__": {"x": 1}, "constructor": {"y": 2}}') as Json;
  const out = mergePatch({}, patch) as Record<string, Json>;
  assert.deepEqual(Object.keys(out), ['__proto__', 'constructor']);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { x: 1 });
  assert.deepEqual(out['constructor'], { y: 2 });
});

test('dotted options win over a config file (diaspora-ctl.md §4)', () => {
  const p = file('{"root_path": "/a", "flush_behavior": "immediate", "nested": {"x": 1, "y": 2}, "list": [1, 2, 3]}');
  const dotted = extractDottedOptions(['--driver.root_path', './data', '--driver.nested.y', '3', '--driver.list', '4,5']);
  assert.deepEqual(mergePatch(loadJsonConfigFile(p), dotted.values.driver), {
    root_path: './data',
    flush_behavior: 'immediate',
    nested: { x: 1, y: 3 },
    list: [4, 5],
  });
});
