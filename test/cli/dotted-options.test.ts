import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';
import { type JsonObject, dumpCompact } from '../../src/api/json.js';
import { DOTTED_PREFIXES, extractDottedOptions, setDottedPath, typeDottedValue } from '../../src/cli/dotted-options.js';
import { CliParseError } from '../../src/cli/errors.js';

function throwsParse(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CliParseError, `expected a CliParseError, got ${String(err)}`);
    assert.equal(err.message, message);
    assert.equal(err.name, 'CliParseError');
    return true;
  });
}

function throwsNumeric(fn: () => unknown, v: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DiasporaError, `expected a DiasporaError, got ${String(err)}`);
    assert.ok(!(err instanceof CliParseError));
    assert.equal(err.message, `Invalid numeric value: ${v}`);
    assert.equal(err.code, ErrorCodes.INVALID_ARGUMENT);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// typeDottedValue: the §3 table, row by row

test('row 1: integers (examples 4, -0, 007, +5)', () => {
  assert.equal(typeDottedValue('4'), 4);
  assert.equal(typeDottedValue('-0'), 0);
  assert.ok(Object.is(typeDottedValue('-0'), 0)); // the integer 0, not -0
  assert.equal(typeDottedValue('007'), 7);
  assert.equal(typeDottedValue('+5'), 5);
  assert.equal(typeDottedValue('0'), 0);
  assert.equal(typeDottedValue('-12'), -12);
  assert.equal(typeDottedValue('+0'), 0);
  assert.equal(typeDottedValue('00'), 0);
});

test('row 1: integers beyond ±2^53 are bigints, beyond int64 an error', () => {
  assert.equal(typeDottedValue('9007199254740991'), 9007199254740991);
  assert.equal(typeDottedValue('-9007199254740991'), -9007199254740991);
  assert.equal(typeDottedValue('9007199254740992'), 9007199254740992n);
  assert.equal(typeDottedValue('-9007199254740992'), -9007199254740992n);
  assert.equal(typeDottedValue('9223372036854775807'), 9223372036854775807n);
  assert.equal(typeDottedValue('+9223372036854775807'), 9223372036854775807n);
  assert.equal(typeDottedValue('-9223372036854775808'), -9223372036854775808n);
  assert.equal(typeDottedValue('0009223372036854775807'), 9223372036854775807n);
  throwsNumeric(() => typeDottedValue('9223372036854775808'), '9223372036854775808');
  throwsNumeric(() => typeDottedValue('-9223372036854775809'), '-9223372036854775809');
  throwsNumeric(() => typeDottedValue('18446744073709551616'), '18446744073709551616');
  assert.equal(dumpCompact(typeDottedValue('9223372036854775807')), '9223372036854775807');
});

test('row 1: floats (examples 1., .5)', () => {
  assert.equal(typeDottedValue('1.'), 1.0);
  assert.equal(dumpCompact(typeDottedValue('1.')), '1');
  assert.equal(typeDottedValue('.5'), 0.5);
  assert.equal(typeDottedValue('-.5'), -0.5);
  assert.equal(typeDottedValue('+.5'), 0.5);
  assert.equal(typeDottedValue('3.14'), 3.14);
  assert.equal(typeDottedValue('+2.50'), 2.5);
  assert.equal(typeDottedValue('-1.'), -1);
  assert.ok(Object.is(typeDottedValue('-0.0'), -0));
  assert.equal(typeDottedValue('007.5'), 7.5);
  assert.equal(typeDottedValue('12345678901234567890.5'), 12345678901234567000);
  throwsNumeric(() => typeDottedValue('1' + '0'.repeat(400) + '.'), '1' + '0'.repeat(400) + '.');
});

test('row 2: a lone dot with an optional sign is an error', () => {
  throwsNumeric(() => typeDottedValue('.'), '.');
  throwsNumeric(() => typeDottedValue('+.'), '+.');
  throwsNumeric(() => typeDottedValue('-.'), '-.');
});

test('row 3: comma lists (examples 1,2; a,b,; a,,b)', () => {
  assert.deepEqual(typeDottedValue('1,2'), [1, 2]);
  assert.deepEqual(typeDottedValue('a,b,'), ['a', 'b']);
  assert.deepEqual(typeDottedValue('a,,b'), ['a', '', 'b']);
  assert.deepEqual(typeDottedValue(','), ['']);
  assert.deepEqual(typeDottedValue(',,'), ['', '']);
  assert.deepEqual(typeDottedValue('a,,'), ['a', '']);
  assert.deepEqual(typeDottedValue(',a'), ['', 'a']);
  assert.deepEqual(typeDottedValue('1.5,true,x,false,-3,.5'), [1.5, true, 'x', false, -3, 0.5]);
  assert.deepEqual(typeDottedValue('9007199254740993,1'), [9007199254740993n, 1]);
  assert.deepEqual(typeDottedValue('1e5,0x10,null'), ['1e5', '0x10', 'null']);
  throwsNumeric(() => typeDottedValue('1,.'), '.');
  throwsNumeric(() => typeDottedValue('1,9223372036854775808'), '9223372036854775808');
});

test('row 3 comes after rows 1-2: "1,." fails on the item, "1.5" is not a list', () => {
  assert.equal(typeDottedValue('1.5'), 1.5);
  throwsNumeric(() => typeDottedValue('-.,a'), '-.');
});

test('row 4: true / false are booleans (ours only)', () => {
  assert.equal(typeDottedValue('true'), true);
  assert.equal(typeDottedValue('false'), false);
  assert.equal(typeDottedValue('True'), 'True');
  assert.equal(typeDottedValue('FALSE'), 'FALSE');
  assert.equal(typeDottedValue('yes'), 'yes');
});

test('row 5: anything else is a string (examples 1e5, 0x10, null, empty)', () => {
  assert.equal(typeDottedValue('1e5'), '1e5');
  assert.equal(typeDottedValue('0x10'), '0x10');
  assert.equal(typeDottedValue('null'), 'null');
  assert.equal(typeDottedValue(''), '');
  assert.equal(typeDottedValue('./data'), './data');
  assert.equal(typeDottedValue('-'), '-');
  assert.equal(typeDottedValue('+'), '+');
  assert.equal(typeDottedValue('1.2.3'), '1.2.3');
  assert.equal(typeDottedValue(' 4'), ' 4');
  assert.equal(typeDottedValue('4 '), '4 ');
  assert.equal(typeDottedValue('--name'), '--name');
  assert.equal(typeDottedValue('on_flush'), 'on_flush');
  assert.equal(typeDottedValue('Infinity'), 'Infinity');
  assert.equal(typeDottedValue('١٢'), '١٢'); // non-ASCII digits are not \d
});

// ---------------------------------------------------------------------------------------------
// extractDottedOptions

test('extracts the documented example and keeps the other arguments in order', () => {
  const r = extractDottedOptions([
    '--driver', 'files', '--driver.root_path', './data', '--name', 't1', '--topic.num_partitions', '4',
  ]);
  assert.deepEqual(r.rest, ['--driver', 'files', '--name', 't1']);
  assert.deepEqual(r.values, {
    driver: { root_path: './data' },
    topic: { num_partitions: 4 },
    validator: {},
    serializer: {},
    'partition-selector': {},
  });
  assert.deepEqual([...r.given].sort(), ['driver', 'topic']);
});

test('every default prefix is recognised', () => {
  assert.deepEqual([...DOTTED_PREFIXES], ['driver', 'topic', 'validator', 'serializer', 'partition-selector']);
  const r = extractDottedOptions([
    '--driver.a', '1', '--topic.b', '2', '--validator.c', '3', '--serializer.d', '4', '--partition-selector.e', '5',
  ]);
  assert.deepEqual(r.rest, []);
  assert.deepEqual(r.values, {
    driver: { a: 1 },
    topic: { b: 2 },
    validator: { c: 3 },
    serializer: { d: 4 },
    'partition-selector': { e: 5 },
  });
  assert.deepEqual([...r.given], ['driver', 'topic', 'validator', 'serializer', 'partition-selector']);
});

test('no dotted options: everything is rest, nothing given', () => {
  const r = extractDottedOptions(['topic', 'list', '--driver', 'files', '-v']);
  assert.deepEqual(r.rest, ['topic', 'list', '--driver', 'files', '-v']);
  assert.equal(r.given.size, 0);
  assert.deepEqual(r.values.driver, {});
});

test('the value is always the next argument, even if it starts with -', () => {
  const r = extractDottedOptions(['--driver.x', '-5', '--driver.y', '--name', '--driver.z', '-', '--topic.w', '--driver.q']);
  assert.deepEqual(r.rest, []);
  assert.deepEqual(r.values.driver, { x: -5, y: '--name', z: '-' });
  assert.deepEqual(r.values.topic, { w: '--driver.q' });
  const s = extractDottedOptions(['--driver.x', '--', '--name', 'n']);
  assert.deepEqual(s.values.driver, { x: '--' });
  assert.deepEqual(s.rest, ['--name', 'n']);
});

test('--prefix.key=value form, split at the first =', () => {
  const r = extractDottedOptions(['--driver.x=y', '--driver.n=4', '--driver.e=', '--driver.eq=a=b', '--topic.l=1,2,', '--name=t1']);
  assert.deepEqual(r.values.driver, { x: 'y', n: 4, e: '', eq: 'a=b' });
  assert.deepEqual(r.values.topic, { l: [1, 2] });
  assert.deepEqual(r.rest, ['--name=t1']);
  // the = form does not consume the next argument
  const s = extractDottedOptions(['--driver.x=1', '--name', 't']);
  assert.deepEqual(s.rest, ['--name', 't']);
  assert.deepEqual(s.values.driver, { x: 1 });
});

test('nested key paths build nested objects', () => {
  const r = extractDottedOptions(['--driver.a.b.c', '1', '--driver.a.b.d', 'x', '--driver.a.e=true', '--topic.k.v', '2']);
  assert.deepEqual(r.values.driver, { a: { b: { c: 1, d: 'x' }, e: true } });
  assert.deepEqual(r.values.topic, { k: { v: 2 } });
});

test('a later option for the same key wins; non-objects on the path are replaced', () => {
  assert.deepEqual(extractDottedOptions(['--driver.a', '1', '--driver.a', '2']).values.driver, { a: 2 });
  assert.deepEqual(extractDottedOptions(['--driver.a', '1', '--driver.a.b', '2']).values.driver, { a: { b: 2 } });
  assert.deepEqual(extractDottedOptions(['--driver.a.b', '2', '--driver.a', '3']).values.driver, { a: 3 });
  assert.deepEqual(extractDottedOptions(['--driver.a', '1,2', '--driver.a.b', 'x']).values.driver, { a: { b: 'x' } });
  assert.deepEqual(extractDottedOptions(['--driver.a.b', '1', '--driver.a.b.c', '2', '--driver.a.d', '3']).values.driver, {
    a: { b: { c: 2 }, d: 3 },
  });
});

test('keys such as __proto__ and constructor are ordinary own keys', () => {
  const r = extractDottedOptions(['--driver.__proto__.x', '1', '--driver.constructor.y', '2', '--driver.toString', 's']);
  const d = r.values.driver;
  assert.deepEqual(Object.keys(d), ['__proto__', 'constructor', 'toString']);
  assert.equal(dumpCompact(d), '{"__proto__":{"x":1},"constructor":{"y":2},"toString":"s"}');
  assert.equal(Object.getPrototypeOf(d), Object.prototype);
});

test('missing value → parse error "Missing value for <option>"', () => {
  throwsParse(() => extractDottedOptions(['--driver.x']), 'Missing value for --driver.x');
  throwsParse(() => extractDottedOptions(['--name', 't', '--topic.a.b']), 'Missing value for --topic.a.b');
  throwsParse(() => extractDottedOptions(['--driver.a', '1', '--partition-selector.k']), 'Missing value for --partition-selector.k');
});

test('empty key segments → parse error', () => {
  throwsParse(() => extractDottedOptions(['--driver.', 'v']), 'Invalid dotted option --driver.: empty key segment');
  throwsParse(() => extractDottedOptions(['--driver..x', 'v']), 'Invalid dotted option --driver..x: empty key segment');
  throwsParse(() => extractDottedOptions(['--driver.x.', 'v']), 'Invalid dotted option --driver.x.: empty key segment');
  throwsParse(() => extractDottedOptions(['--driver.a..b=1']), 'Invalid dotted option --driver.a..b: empty key segment');
  throwsParse(() => extractDottedOptions(['--topic.=v']), 'Invalid dotted option --topic.: empty key segment');
  throwsParse(() => extractDottedOptions(['--driver.']), 'Invalid dotted option --driver.: empty key segment');
});

test('value typing errors are runtime DiasporaErrors, reported after argv-wide parse errors', () => {
  throwsNumeric(() => extractDottedOptions(['--driver.x', '.']), '.');
  throwsNumeric(() => extractDottedOptions(['--topic.n=-.']), '-.');
  throwsNumeric(() => extractDottedOptions(['--topic.n', '99999999999999999999']), '99999999999999999999');
  throwsParse(() => extractDottedOptions(['--driver.x', '.', '--topic.y']), 'Missing value for --topic.y');
});

test('arguments that only look similar are not dotted options', () => {
  const argv = ['--driver-config', 'f.json', '--drivers.x', '1', '--driverx', '-driver.x', 'driver.x', '--Driver.x', '--topic-config', 'g'];
  const r = extractDottedOptions(argv);
  assert.deepEqual(r.rest, argv);
  assert.equal(r.given.size, 0);
});

test('scanning stops at --', () => {
  const r = extractDottedOptions(['--driver.a', '1', '--', '--driver.b', '2']);
  assert.deepEqual(r.rest, ['--', '--driver.b', '2']);
  assert.deepEqual(r.values.driver, { a: 1 });
});

test('custom prefix list', () => {
  const r = extractDottedOptions(['--driver.a', '1', '--topic.b', '2'], ['driver']);
  assert.deepEqual(r.rest, ['--topic.b', '2']);
  assert.deepEqual(r.values, { driver: { a: 1 } });
  assert.deepEqual([...r.given], ['driver']);
});

test('setDottedPath', () => {
  const o: JsonObject = { a: 1, b: { c: 2 } };
  setDottedPath(o, ['b', 'd'], 3);
  setDottedPath(o, ['a', 'x', 'y'], 'z');
  setDottedPath(o, ['e'], [1]);
  assert.deepEqual(o, { a: { x: { y: 'z' } }, b: { c: 2, d: 3 }, e: [1] });
});
