/** Per-FIFO options of the fifo daemon (diaspora-ctl.md §7.2 table): values, defaults, warning texts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveConsumerOptions, resolveProducerOptions, sameProducerOptions } from '../../src/fifo/fifo-options.js';

const T = { timeout: 5000 };
const m = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

test('producer defaults: raw, batch_size 128, linger_ms 5', T, () => {
  assert.deepEqual(resolveProducerOptions('p1', m({})), { options: { format: 'raw', batchSize: 128, lingerMs: 5 }, warnings: [] });
});

test('producer: valid values', T, () => {
  const r = resolveProducerOptions('p1', m({ format: 'json', batch_size: '1', linger_ms: '0' }));
  assert.deepEqual(r, { options: { format: 'json', batchSize: 1, lingerMs: 0 }, warnings: [] });
  assert.equal(resolveProducerOptions('p1', m({ format: 'envelope' })).options.format, 'envelope');
  assert.equal(resolveProducerOptions('p1', m({ format: 'raw', batch_size: '100000' })).options.batchSize, 100000);
});

test('producer: invalid batch_size → warning, default 128', T, () => {
  for (const v of ['0', '-1', 'abc', '1.5', '', '12abc', ' 3']) {
    const r = resolveProducerOptions('/tmp/p1', m({ batch_size: v }));
    assert.equal(r.options.batchSize, 128);
    assert.deepEqual(r.warnings, [`Invalid batch_size '${v}' for FIFO '/tmp/p1', using default (128)`]);
  }
});

test('producer: invalid linger_ms → warning, default 5', T, () => {
  for (const v of ['-1', 'x', '']) {
    const r = resolveProducerOptions('p1', m({ linger_ms: v }));
    assert.equal(r.options.lingerMs, 5);
    assert.deepEqual(r.warnings, [`Invalid linger_ms '${v}' for FIFO 'p1', using default (5)`]);
  }
});

test('producer: linger_ms above the longest timer (2147483647 ms) → warning naming the limit, default 5', T, () => {
  assert.equal(resolveProducerOptions('p1', m({ linger_ms: '2147483647' })).options.lingerMs, 2_147_483_647);
  for (const v of ['2147483648', '3000000000']) {
    const r = resolveProducerOptions('p1', m({ linger_ms: v }));
    assert.equal(r.options.lingerMs, 5);
    assert.deepEqual(r.warnings, [`Invalid linger_ms '${v}' for FIFO 'p1' (at most 2147483647 ms), using default (5)`]);
  }
});

test("unknown format → warning, 'raw'", T, () => {
  for (const resolve of [resolveProducerOptions, resolveConsumerOptions]) {
    const r = resolve('f', m({ format: 'JSON' }));
    assert.equal(r.options.format, 'raw');
    assert.deepEqual(r.warnings, ["Unknown format 'JSON' for FIFO 'f', using 'raw' instead"]);
  }
});

test('unknown keys → warning (producer-only keys are unknown to consumers and vice versa)', T, () => {
  assert.deepEqual(resolveProducerOptions('p1', m({ colour: 'red', start: 'latest' })).warnings, [
    "Unknown option 'colour' for FIFO 'p1'",
    "Unknown option 'start' for FIFO 'p1'",
  ]);
  assert.deepEqual(resolveConsumerOptions('c1', m({ batch_size: '4', linger_ms: '1' })).warnings, [
    "Unknown option 'batch_size' for FIFO 'c1'",
    "Unknown option 'linger_ms' for FIFO 'c1'",
  ]);
});

test('consumer: defaults and start values', T, () => {
  assert.deepEqual(resolveConsumerOptions('c1', m({})), { options: { format: 'raw', start: 'committed' }, warnings: [] });
  for (const s of ['committed', 'earliest', 'latest']) assert.equal(resolveConsumerOptions('c1', m({ start: s })).options.start, s);
  const r = resolveConsumerOptions('c1', m({ start: 'beginning' }));
  assert.equal(r.options.start, 'committed');
  assert.deepEqual(r.warnings, ["Invalid start 'beginning' for FIFO 'c1', using default (committed)"]);
});

test('warnings follow option order', T, () => {
  const r = resolveProducerOptions('p', m({ x: '1', batch_size: 'no', format: 'yaml' }));
  assert.deepEqual(r.warnings, [
    "Unknown option 'x' for FIFO 'p'",
    "Invalid batch_size 'no' for FIFO 'p', using default (128)",
    "Unknown format 'yaml' for FIFO 'p', using 'raw' instead",
  ]);
});

test('sameProducerOptions compares resolved values (explicit default = omitted)', T, () => {
  const a = resolveProducerOptions('p', m({})).options;
  const b = resolveProducerOptions('p', m({ batch_size: '128', format: 'raw' })).options;
  const c = resolveProducerOptions('p', m({ batch_size: '64' })).options;
  assert.ok(sameProducerOptions(a, b));
  assert.ok(!sameProducerOptions(a, c));
});
