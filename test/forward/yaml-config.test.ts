import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';
import type { Json } from '../../src/api/json.js';
import { loadForwardYamlFile, parseDuration, parseForwardYaml, typePlainScalar } from '../../src/forward/yaml-config.js';

const y = (text: string): Json => parseForwardYaml(text, 'fwd.yaml');

function throwsYaml(fn: () => unknown, detail: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DiasporaError, `expected a DiasporaError, got ${String(err)}`);
    assert.equal(err.message, `Failed to parse YAML config: ${detail}`);
    assert.equal(err.code, ErrorCodes.CONFIG);
    return true;
  });
}

function throwsDuration(v: Json, what: string, shown: string): void {
  assert.throws(
    () => parseDuration(v, what),
    (err: unknown) => {
      assert.ok(err instanceof DiasporaError, `expected a DiasporaError, got ${String(err)}`);
      assert.equal(err.message, `Invalid duration for ${what}: ${shown}`);
      assert.equal(err.code, ErrorCodes.CONFIG);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Structure

test('the reference configuration example', () => {
  const text = [
    'drivers:                       # required mapping: name -> driver',
    '  local:',
    '    type: files',
    '    options: { root_path: /data/local }',
    'forward:',
    '  - from: local/source-topic',
    '    to:   remote/dest-topic',
    '    data_selector:  "./plugins.js:mySelector"',
    "    data_allocator: './plugins.js:myAllocator'",
    '',
  ].join('\n');
  assert.deepEqual(y(text), {
    drivers: { local: { type: 'files', options: { root_path: '/data/local' } } },
    forward: [
      {
        from: 'local/source-topic',
        to: 'remote/dest-topic',
        data_selector: './plugins.js:mySelector',
        data_allocator: './plugins.js:myAllocator',
      },
    ],
  });
});

test('block and flow collections, dotted keys, nesting', () => {
  const text = [
    'drivers:',
    '  dc1: { type: kafka, options: { kafka: { bootstrap.servers: "dc1:9092" } } }',
    'forward:',
    '  - name: orders-dr',
    '    from: [dc1/orders, dc2/orders]',
    '    filters: [ { module: ./filters/drop-test.js, config: { field: env, value: test } } ]',
    '  -',
    '    from: a/b',
    '    to: c/d',
    'empty_list: []',
    'empty_map: {}',
  ].join('\n');
  assert.deepEqual(y(text), {
    drivers: { dc1: { type: 'kafka', options: { kafka: { 'bootstrap.servers': 'dc1:9092' } } } },
    forward: [
      {
        name: 'orders-dr',
        from: ['dc1/orders', 'dc2/orders'],
        filters: [{ module: './filters/drop-test.js', config: { field: 'env', value: 'test' } }],
      },
      { from: 'a/b', to: 'c/d' },
    ],
    empty_list: [],
    empty_map: {},
  });
});

test('empty documents give null; a top-level scalar or list is returned as is', () => {
  assert.equal(y(''), null);
  assert.equal(y('# only a comment\n'), null);
  assert.equal(y('---\n'), null);
  assert.equal(y('42'), 42);
  assert.deepEqual(y('- 1\n- x\n'), [1, 'x']);
  assert.deepEqual(y('---\na: 1\n...\n'), { a: 1 });
});

// ---------------------------------------------------------------------------------------------
// Scalar typing (diaspora-ctl.md §8.1)

test('quoted scalars are always strings', () => {
  assert.deepEqual(y('a: "123"\nb: \'123\'\nc: 123\n'), { a: '123', b: '123', c: 123 });
  assert.deepEqual(y('a: "on"\nb: on\nc: \'true\'\nd: true\n'), { a: 'on', b: true, c: 'true', d: true });
  assert.deepEqual(y('a: "1.5"\nb: "~"\nc: ""\nd: \'null\'\ne: "yes"\n'), { a: '1.5', b: '~', c: '', d: 'null', e: 'yes' });
  assert.deepEqual(y('- "0"\n- \'-1\'\n- "12345678901234567890"\n'), ['0', '-1', '12345678901234567890']);
  assert.deepEqual(y('a: "x\\ty\\u00e9"\nb: \'it\'\'s\'\n'), { a: 'x\ty\u00e9', b: "it's" });
});

test('plain booleans: true/false/yes/no/on/off in lower, Capitalised and UPPER case', () => {
  const t = ['true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'on', 'On', 'ON'];
  const f = ['false', 'False', 'FALSE', 'no', 'No', 'NO', 'off', 'Off', 'OFF'];
  for (const w of t) assert.deepEqual(y(`v: ${w}`), { v: true }, w);
  for (const w of f) assert.deepEqual(y(`v: ${w}`), { v: false }, w);
  for (const w of ['tRUE', 'oN', 'yES', 'y', 'n', 'Y', 'N', 'truee', 'enable']) assert.deepEqual(y(`v: ${w}`), { v: w }, w);
  assert.deepEqual(y('[on, off, "on", \'off\']'), [true, false, 'on', 'off']);
});

test('plain integers: decimal, with sign and leading zeros; bigint beyond 2^53', () => {
  assert.deepEqual(y('[0, 4, -5, +5, 007, -0, 1000]'), [0, 4, -5, 5, 7, 0, 1000]);
  assert.ok(Object.is((y('[-0]') as Json[])[0], 0));
  assert.deepEqual(y('a: 9007199254740991\nb: 9007199254740993\nc: -9223372036854775808\nd: 12345678901234567890\n'), {
    a: 9007199254740991,
    b: 9007199254740993n,
    c: -9223372036854775808n,
    d: 12345678901234567890n,
  });
  // beyond the 64-bit ranges an integer literal becomes a double, as in the JSON parser
  assert.deepEqual(y('a: 123456789012345678901234\n'), { a: 1.2345678901234568e23 });
});

test('plain decimal floats are numbers', () => {
  assert.deepEqual(y('[1.5, -0.25, .5, 1., +2.5, 1e5, 2.5E-3, -1.5e+2, 0.0]'), [1.5, -0.25, 0.5, 1, 2.5, 100000, 0.0025, -150, 0]);
  assert.ok(Object.is((y('[-0.0]') as Json[])[0], -0));
  assert.deepEqual(y('[1e999, -1e999]'), ['1e999', '-1e999']); // not representable: kept as text
});

test('plain null: ~, null, Null, NULL and empty', () => {
  assert.deepEqual(y('a: ~\nb: null\nc: Null\nd: NULL\ne:\nf: nULL\ng: "null"\n'), {
    a: null,
    b: null,
    c: null,
    d: null,
    e: null,
    f: 'nULL',
    g: 'null',
  });
  assert.deepEqual(y('- \n- ~\n-\n'), [null, null, null]);
  assert.deepEqual(y('{a: , b: ~}'), { a: null, b: null });
});

test('everything else is a string', () => {
  const words = ['0x10', '0o17', '0b11', '.inf', '-.inf', '.nan', '5s', '1_000', '12:30', '1.2.3', '+', '--', '-x', '2024-01-02', 'a b', '1,2'];
  assert.deepEqual(y(words.map((w) => `- ${w}`).join('\n')), words);
  assert.deepEqual(y('path: /data/local\nspec: ./plugins.js:mySelector\nurl: http://x:1/y\n'), {
    path: '/data/local',
    spec: './plugins.js:mySelector',
    url: 'http://x:1/y',
  });
  // multi-line plain scalars are folded, then typed
  assert.deepEqual(y('a: hello\n  world\nb: 1\n  2\n'), { a: 'hello world', b: '1 2' });
});

test('block scalars are strings', () => {
  assert.deepEqual(y('a: |\n  123\nb: >-\n  on\nc: |-\n  true\n'), { a: '123\n', b: 'on', c: 'true' });
});

test('tags: !!str and ! force strings, other tags are ignored', () => {
  assert.deepEqual(y('a: !!str 123\nb: ! on\nc: !!int 7\nd: !custom on\ne: !!int "7"\nf: !!str\n'), {
    a: '123',
    b: 'on',
    c: 7,
    d: true,
    e: '7',
    f: '',
  });
});

test('typePlainScalar directly', () => {
  assert.equal(typePlainScalar(''), null);
  assert.equal(typePlainScalar('Off'), false);
  assert.equal(typePlainScalar('+12'), 12);
  assert.equal(typePlainScalar('+9007199254740993'), 9007199254740993n);
  assert.equal(typePlainScalar('-.5'), -0.5);
  assert.equal(typePlainScalar('1e3'), 1000);
  assert.equal(typePlainScalar('e3'), 'e3');
  assert.equal(typePlainScalar('.'), '.');
  assert.equal(typePlainScalar('1e'), '1e');
});

// ---------------------------------------------------------------------------------------------
// Keys, anchors, aliases

test('mapping keys are the scalar text', () => {
  assert.deepEqual(y('123: a\ntrue: b\n~: c\n"quoted key": d\n1.5: e\n'), {
    '123': 'a',
    true: 'b',
    '~': 'c',
    'quoted key': 'd',
    '1.5': 'e',
  });
  assert.deepEqual(y('__proto__: {x: 1}\nconstructor: 2\n'), JSON.parse('{"__proto__":{"x":1},"constructor":2}'));
  assert.equal(Object.getPrototypeOf(y('__proto__: {x: 1}')), Object.prototype);
});

test('anchors and aliases are resolved into independent copies', () => {
  const text = [
    'base: &opts { root_path: /data, flush_behavior: on_flush }',
    'port: &p 9092',
    'drivers:',
    '  a: { type: files, options: *opts }',
    '  b: { type: files, options: *opts, port: *p }',
    'list: &l [1, "2", on]',
    'again: *l',
  ].join('\n');
  const v = y(text) as Record<string, Record<string, Record<string, Json>>>;
  assert.deepEqual(v, {
    base: { root_path: '/data', flush_behavior: 'on_flush' },
    port: 9092,
    drivers: {
      a: { type: 'files', options: { root_path: '/data', flush_behavior: 'on_flush' } },
      b: { type: 'files', options: { root_path: '/data', flush_behavior: 'on_flush' }, port: 9092 },
    },
    list: [1, '2', true],
    again: [1, '2', true],
  });
  assert.notEqual(v['drivers']!['a']!['options'], v['drivers']!['b']!['options']);
  assert.notEqual(v['base'], v['drivers']!['a']!['options']);
});

test('an alias refers to the latest anchor defined before it', () => {
  const text = ['a: &A { b: &B 1 }', 'c: *B', 'd: &B 2', 'e: *A', 'f: *B', 'g: *A'].join('\n');
  assert.deepEqual(y(text), { a: { b: 1 }, c: 1, d: 2, e: { b: 1 }, f: 2, g: { b: 1 } });
  assert.deepEqual(y('k: &a key\n*a : v\n'), { k: 'key', key: 'v' });
  assert.deepEqual(y('? &k x\n: 1\ny: *k\n'), { x: 1, y: 'x' });
});

test('the merge key << is an ordinary key (as in yaml-cpp)', () => {
  assert.deepEqual(y('base: &b { x: 1 }\nd:\n  <<: *b\n  y: 2\n'), { base: { x: 1 }, d: { '<<': { x: 1 }, y: 2 } });
});

// ---------------------------------------------------------------------------------------------
// Errors with line:column

test('syntax errors report file:line:column', () => {
  throwsYaml(() => y('a: [1, 2\n'), 'fwd.yaml:2:1: Flow sequence in block collection must be sufficiently indented and end with a ]');
  throwsYaml(() => y('a: b\n  c: d\n'), 'fwd.yaml:1:4: Nested mappings are not allowed in compact mappings');
  throwsYaml(() => y('a: "unterminated\n'), 'fwd.yaml:2:1: Missing closing "quote');
  throwsYaml(() => y('forward:\n\t- x\n'), 'fwd.yaml:2:1: Tabs are not allowed as indentation');
  throwsYaml(() => y('a: @x\n'), 'fwd.yaml:1:4: Plain value cannot start with reserved character @');
  throwsYaml(() => parseForwardYaml('- a\nb: 1\n', '/etc/x.yaml'), '/etc/x.yaml:2:1: Unexpected scalar at node end');
});

test('duplicate keys are errors', () => {
  throwsYaml(() => y('a: 1\na: 2\n'), 'fwd.yaml:2:1: Map keys must be unique');
  throwsYaml(() => y('drivers:\n  x: {type: files}\n  x: {type: kafka}\n'), 'fwd.yaml:3:3: Map keys must be unique');
  throwsYaml(() => y('a: {b: 1, b: 2}\n'), 'fwd.yaml:1:11: Map keys must be unique');
  throwsYaml(() => y('"a": 1\na: 2\n'), 'fwd.yaml:2:1: Map keys must be unique');
  throwsYaml(() => y('k: &a x\nm:\n  x: 1\n  *a : 2\n'), 'fwd.yaml:4:3: Map keys must be unique');
});

test('alias errors', () => {
  throwsYaml(() => y('a: *nope\n'), 'fwd.yaml:1:4: Unresolved alias: nope');
  throwsYaml(() => y('a: *later\nb: &later 1\n'), 'fwd.yaml:1:4: Unresolved alias: later');
  throwsYaml(() => y('x: &x [1, *x]\n'), 'fwd.yaml:1:11: Recursive alias: x');
  throwsYaml(() => y('x: &x {a: {b: *x}}\n'), 'fwd.yaml:1:15: Recursive alias: x');
});

test('alias bombs are refused', () => {
  const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  const names = 'abcdefgh';
  for (let i = 1; i < names.length; i++) {
    const prev = `*${names[i - 1]}`;
    lines.push(`${names[i]}: &${names[i]} [${Array(10).fill(prev).join(', ')}]`);
  }
  throwsYaml(() => y(lines.join('\n')), 'fwd.yaml:6:36: Excessive alias expansion');
});

test('other structural errors', () => {
  throwsYaml(() => y('---\na: 1\n---\nb: 2\n'), 'fwd.yaml:3:1: Expected a single YAML document');
  throwsYaml(() => y('? [1, 2]\n: 3\n'), 'fwd.yaml:1:3: Mapping keys must be scalars');
  throwsYaml(() => y('a:\n  ? {x: 1}\n  : 3\n'), 'fwd.yaml:2:5: Mapping keys must be scalars');
});

test('loadForwardYamlFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'diaspora-yaml-'));
  try {
    const p = join(dir, 'fwd.yaml');
    writeFileSync(p, 'drivers: {}\nforward: []\nshutdown_timeout: 2s\n');
    assert.deepEqual(loadForwardYamlFile(p), { drivers: {}, forward: [], shutdown_timeout: '2s' });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'a: 1\na: 2\n');
    throwsYaml(() => loadForwardYamlFile(bad), `${bad}:2:1: Map keys must be unique`);
    const missing = join(dir, 'missing.yaml');
    throwsYaml(() => loadForwardYamlFile(missing), `cannot read ${missing}: No such file or directory`);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    throwsYaml(() => loadForwardYamlFile(sub), `cannot read ${sub}: Is a directory`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Durations (forwarding.md §2)

test('durations with units', () => {
  assert.equal(parseDuration('250ms', 'x'), 250);
  assert.equal(parseDuration('5s', 'x'), 5000);
  assert.equal(parseDuration('1.5s', 'x'), 1500);
  assert.equal(parseDuration('0.1s', 'x'), 100);
  assert.equal(parseDuration('.5s', 'x'), 500);
  assert.equal(parseDuration('2m', 'x'), 120_000);
  assert.equal(parseDuration('1.5m', 'x'), 90_000);
  assert.equal(parseDuration('1h', 'x'), 3_600_000);
  assert.equal(parseDuration('0.25h', 'x'), 900_000);
  assert.equal(parseDuration('0s', 'x'), 0);
  assert.equal(parseDuration('0ms', 'x'), 0);
  assert.equal(parseDuration('20ms', 'x'), 20);
  assert.equal(parseDuration('1.4ms', 'x'), 1); // rounded to the millisecond
  assert.equal(parseDuration('1.5ms', 'x'), 2);
  assert.equal(parseDuration('007s', 'x'), 7000);
});

test('durations as integers of milliseconds', () => {
  assert.equal(parseDuration(1000, 'x'), 1000);
  assert.equal(parseDuration(0, 'x'), 0);
  assert.ok(Object.is(parseDuration(-0, 'x'), 0));
  assert.equal(parseDuration(2147483647, 'x'), 2147483647);
});

test('durations above the longest timer (2147483647 ms) are refused with the limit in the message', () => {
  for (const v of [2147483648, 9007199254740991, '600h', '2147483.648s']) {
    throwsDuration(v, 'shutdown_timeout', `${String(v)} (at most 2147483647 ms)`);
  }
  assert.equal(parseDuration('2147483.647s', 'x'), 2147483647);
});

test('invalid durations', () => {
  throwsDuration('5', 'shutdown_timeout', '5');
  throwsDuration('5 s', 'shutdown_timeout', '5 s');
  throwsDuration(' 5s', 'shutdown_timeout', ' 5s');
  throwsDuration('5S', 'shutdown_timeout', '5S');
  throwsDuration('5sec', 'shutdown_timeout', '5sec');
  throwsDuration('-5s', 'shutdown_timeout', '-5s');
  throwsDuration('+5s', 'shutdown_timeout', '+5s');
  throwsDuration('1.s', 'retry.min', '1.s');
  throwsDuration('1e3ms', 'retry.min', '1e3ms');
  throwsDuration('5d', 'retry.min', '5d');
  throwsDuration('s', 'retry.min', 's');
  throwsDuration('', 'batch_linger', '');
  throwsDuration('99999999999999999999h', 'batch_linger', '99999999999999999999h');
  throwsDuration(-1, 'batch_linger', '-1');
  throwsDuration(1.5, 'batch_linger', '1.5');
  throwsDuration(9007199254740993n, 'batch_linger', '9007199254740993');
  throwsDuration(true, 'failover.health_interval', 'true');
  throwsDuration(null, 'failover.health_interval', 'null');
  throwsDuration({ a: 1 }, 'failover.health_interval', '{"a":1}');
  throwsDuration(['1s'], 'failover.health_interval', '["1s"]');
});

test('durations read from YAML', () => {
  const c = y('a: 5s\nb: 500\nc: "500"\nd: "1.5s"\ne: 1.5\nf:\n') as Record<string, Json>;
  assert.equal(parseDuration(c['a'] as Json, 'a'), 5000);
  assert.equal(parseDuration(c['b'] as Json, 'b'), 500);
  throwsDuration(c['c'] as Json, 'c', '500');
  assert.equal(parseDuration(c['d'] as Json, 'd'), 1500);
  throwsDuration(c['e'] as Json, 'e', '1.5');
  throwsDuration(c['f'] as Json, 'f', 'null');
});

test('type, from, to, data_selector and data_allocator keep their written text; nulls stay null', () => {
  const v = parseForwardYaml(
    'drivers:\n  a: {type: on, options: {x: on}}\n  b: {type: 123}\n  c: {type: ~}\nforward:\n  - {from: yes, to: 1.5, data_selector: off}\n',
    't.yaml',
  ) as { drivers: Record<string, { type: unknown; options?: { x: unknown } }>; forward: Record<string, unknown>[] };
  assert.equal(v.drivers['a']?.type, 'on');
  assert.equal(v.drivers['a']?.options?.x, true); // other keys are typed as yaml-cpp does
  assert.equal(v.drivers['b']?.type, '123');
  assert.equal(v.drivers['c']?.type, null);
  assert.deepEqual(v.forward[0], { from: 'yes', to: '1.5', data_selector: 'off' });
});
