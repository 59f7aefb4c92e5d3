/** Line formats of the fifo daemon (diaspora-ctl.md §7.3, §7.4) and the byte line splitter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataSegments } from '../../src/api/data-segments.js';
import { Metadata } from '../../src/api/metadata.js';
import { decodeProducerLine, encodeConsumerLine } from '../../src/fifo/formats.js';
import { ByteLineBuffer } from '../../src/fifo/line-buffer.js';

const T = { timeout: 5000 };
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

test('raw: the line as a JSON string, byte for byte (quotes, backslashes, escapes untouched)', T, () => {
  for (const line of ['hello', 'he said "hi"', 'back\\slash \\n not a newline', '{"looks":"like json"}', '  spaced  ', 'é ✓ 😀', '\ufeffbom']) {
    const d = decodeProducerLine(b(line), 'raw');
    assert.equal(d.metadata.json, line);
    assert.equal(d.data, undefined);
  }
});

test('invalid UTF-8 → "invalid UTF-8" in every format', T, () => {
  for (const f of ['raw', 'json', 'envelope'] as const) {
    for (const bytes of [Buffer.from([0xff]), Buffer.from([0x61, 0xc3]), Buffer.from([0xed, 0xa0, 0x80])]) {
      assert.throws(() => decodeProducerLine(bytes, f), { message: 'invalid UTF-8' });
    }
  }
});

test('a valid line too long for a JS string (> 0x1fffffe8 chars) says "line too long", not "invalid UTF-8"', { timeout: 60_000 }, () => {
  const bytes = Buffer.alloc(0x1fffffe8 + 1, 0x61); // ASCII 'a': valid UTF-8
  assert.throws(() => decodeProducerLine(bytes, 'raw'), { message: `line too long: ${bytes.length} bytes (at most ${0x1fffffe8} characters)` });
});

test('json: any JSON value; a parse failure says "Could not parse JSON: …"', T, () => {
  assert.deepEqual(decodeProducerLine(b('{"a":1,"b":[true,null]}'), 'json').metadata.json, { a: 1, b: [true, null] });
  assert.equal(decodeProducerLine(b('42'), 'json').metadata.json, 42);
  assert.equal(decodeProducerLine(b('"s"'), 'json').metadata.json, 's');
  assert.equal(decodeProducerLine(b('12345678901234567890'), 'json').metadata.json, 12345678901234567890n);
  assert.throws(() => decodeProducerLine(b('{oops'), 'json'), (err: Error) => err.message.startsWith('Could not parse JSON: '));
  assert.throws(() => decodeProducerLine(b('he said "hi"'), 'json'), /^Error: Could not parse JSON: |Could not parse JSON: /);
});

test('envelope: metadata (default {}) and base64 data (optional)', T, () => {
  let d = decodeProducerLine(b('{"metadata":{"x":1},"data":"aGVsbG8="}'), 'envelope');
  assert.deepEqual(d.metadata.json, { x: 1 });
  assert.equal(d.data?.toString(), 'hello');
  d = decodeProducerLine(b('{"data":"AAEC"}'), 'envelope');
  assert.deepEqual(d.metadata.json, {});
  assert.deepEqual([...(d.data as Buffer)], [0, 1, 2]);
  d = decodeProducerLine(b('{"metadata":"just a string"}'), 'envelope');
  assert.equal(d.metadata.json, 'just a string');
  assert.equal(d.data, undefined);
  d = decodeProducerLine(b('{"metadata":null,"data":""}'), 'envelope');
  assert.equal(d.metadata.json, null);
  assert.equal(d.data?.length, 0);
  d = decodeProducerLine(b('{"data":"aGk"}'), 'envelope'); // unpadded
  assert.equal(d.data?.toString(), 'hi');
});

test('envelope: bad input is rejected with a message', T, () => {
  assert.throws(() => decodeProducerLine(b('[1,2]'), 'envelope'), { message: 'Invalid envelope: expected a JSON object' });
  assert.throws(() => decodeProducerLine(b('"x"'), 'envelope'), { message: 'Invalid envelope: expected a JSON object' });
  assert.throws(() => decodeProducerLine(b('{"data":12}'), 'envelope'), { message: "Invalid envelope: 'data' must be a base64 string" });
  assert.throws(() => decodeProducerLine(b('{"data":"not base64!"}'), 'envelope'), { message: "Invalid envelope: 'data' must be a base64 string" });
  assert.throws(() => decodeProducerLine(b('{nope'), 'envelope'), (err: Error) => err.message.startsWith('Could not parse JSON: '));
});

test('consumer raw: a string without CR/LF as is, anything else as compact canonical JSON', T, () => {
  assert.equal(encodeConsumerLine(new Metadata('he said "hi" \\ ok'), undefined, 'raw'), 'he said "hi" \\ ok\n');
  assert.equal(encodeConsumerLine(new Metadata(''), undefined, 'raw'), '\n');
  assert.equal(encodeConsumerLine(new Metadata('two\nlines'), undefined, 'raw'), '"two\\nlines"\n');
  assert.equal(encodeConsumerLine(new Metadata('cr\r'), undefined, 'raw'), '"cr\\r"\n');
  assert.equal(encodeConsumerLine(new Metadata({ b: 1, a: [1.5, 'x'] }), undefined, 'raw'), '{"a":[1.5,"x"],"b":1}\n');
  assert.equal(encodeConsumerLine(Metadata.fromCanonicalText('"stored"'), undefined, 'raw'), 'stored\n');
});

test('consumer json: compact canonical JSON (strings quoted)', T, () => {
  assert.equal(encodeConsumerLine(new Metadata('s'), undefined, 'json'), '"s"\n');
  assert.equal(encodeConsumerLine(new Metadata({ z: 2.5, a: null }), undefined, 'json'), '{"a":null,"z":2.5}\n');
});

test('envelope: an object with other keys but neither "metadata" nor "data" (e.g. a plain JSON line) is refused, not stored as {}', T, () => {
  assert.throws(() => decodeProducerLine(b('{"user":"bob","action":"login"}'), 'envelope'), {
    message: "Invalid envelope: no 'metadata' or 'data' key (found 'user', 'action')",
  });
  assert.throws(() => decodeProducerLine(b('{"metdata":{"a":1}}'), 'envelope'), { message: "Invalid envelope: no 'metadata' or 'data' key (found 'metdata')" });
  // the empty envelope stays valid (metadata {}, no data), and other keys next to metadata/data are ignored
  // (consume's lines {"data","data_size","id","metadata","partition"} can be produced again)
  assert.deepEqual(decodeProducerLine(b('{}'), 'envelope').metadata.json, {});
  const d = decodeProducerLine(b('{"data":"aGk=","data_size":2,"id":0,"metadata":{"a":1},"partition":0}'), 'envelope');
  assert.deepEqual(d.metadata.json, { a: 1 });
  assert.equal(d.data?.toString(), 'hi');
});

test('consumer envelope: {"data":…,"metadata":…}, data omitted when empty', T, () => {
  const data = new DataSegments([Buffer.from('hel'), Buffer.from('lo')]);
  assert.equal(encodeConsumerLine(new Metadata({ x: 1 }), data, 'envelope'), '{"data":"aGVsbG8=","metadata":{"x":1}}\n');
  assert.equal(encodeConsumerLine(new Metadata('m'), DataSegments.EMPTY, 'envelope'), '{"metadata":"m"}\n');
  assert.equal(encodeConsumerLine(new Metadata({}), undefined, 'envelope'), '{"metadata":{}}\n');
});

test('envelope round trip', T, () => {
  const line = '{"data":"AP8=","metadata":{"k":"v"}}';
  const d = decodeProducerLine(b(line), 'envelope');
  assert.equal(encodeConsumerLine(d.metadata, new DataSegments(d.data as Buffer), 'envelope'), line + '\n');
});

test('ByteLineBuffer: lines across chunks, multi-byte characters split between reads', T, () => {
  const lb = new ByteLineBuffer();
  const all = b('first\nsé');
  lb.push(all.subarray(0, 8)); // "first\ns" + first byte of "é"
  assert.equal(lb.next()?.toString(), 'first');
  assert.equal(lb.next(), undefined);
  lb.push(all.subarray(8));
  lb.push(b('cond\n\nthird'));
  assert.equal(lb.next()?.toString(), 'sécond');
  assert.equal(lb.next()?.toString(), '');
  assert.equal(lb.next(), undefined);
  assert.equal(lb.takeRest().toString(), 'third');
  assert.equal(lb.takeRest().length, 0);
});

test('ByteLineBuffer: a long line in many chunks', T, () => {
  const lb = new ByteLineBuffer();
  for (let i = 0; i < 1000; i++) lb.push(b('x'.repeat(100)));
  assert.equal(lb.next(), undefined);
  lb.push(b('y\nz'));
  assert.equal(lb.next()?.toString(), 'x'.repeat(100_000) + 'y');
  assert.equal(lb.takeRest().toString(), 'z');
});
