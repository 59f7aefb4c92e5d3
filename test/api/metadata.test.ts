import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, type Json } from '../../src/api/metadata.js';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';

const UINT64_MAX = 18446744073709551615n;
const INT64_MIN = -9223372036854775808n;

/** An assert.throws matcher for a DiasporaError with `code` and a message matching `message`. */
function diasporaError(code: string, message: string | RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof DiasporaError, `not a DiasporaError: ${String(e)}`);
    assert.equal(e.code, code);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

const PARSE_ERROR = diasporaError(ErrorCodes.JSON, /^Could not parse JSON: ./);
const INVALID_UTF16 = diasporaError(ErrorCodes.JSON, 'Could not serialize metadata: invalid UTF-16 string');

describe('Metadata construction', () => {
  it('defaults to the empty object', () => {
    const md = new Metadata();
    assert.deepEqual(md.json, {});
    assert.equal(md.dump(), '{}');
  });

  it('wraps any JSON value, not only objects', () => {
    const values: [Json, string][] = [
      [null, 'null'],
      [true, 'true'],
      [false, 'false'],
      [0, '0'],
      [-17, '-17'],
      ['text', '"text"'],
      [[], '[]'],
      [[1, 'a', null, false, [], {}], '[1,"a",null,false,[],{}]'],
      [{ x: { y: [1, { z: null }] } }, '{"x":{"y":[1,{"z":null}]}}'],
    ];
    for (const [v, text] of values) {
      const md = new Metadata(v);
      assert.deepEqual(md.json, v);
      assert.equal(md.dump(), text);
    }
  });

  it('toString() is the compact dump and toJSON() the value', () => {
    const md = new Metadata({ b: 1, a: [true] });
    assert.equal(String(md), '{"a":[true],"b":1}');
    assert.equal(JSON.stringify({ m: md }), '{"m":{"b":1,"a":[true]}}');
  });
});

describe('Metadata.parse', () => {
  it('parses any JSON text, with whitespace', () => {
    assert.deepEqual(Metadata.parse(' { "a" : [ 1 , 2.5 , "x" ] ,\n\t"b":{ } }\r\n').json, { a: [1, 2.5, 'x'], b: {} });
    assert.equal(Metadata.parse('"str"').json, 'str');
    assert.equal(Metadata.parse('null').json, null);
    assert.equal(Metadata.parse('-12').json, -12);
    assert.equal(Metadata.parse('true').json, true);
  });

  it('throws "Could not parse JSON: …" on invalid text', () => {
    for (const text of ['', '{', '{"a":1,}', '[1] [2]', 'nul', "{'a':1}", '{"a" 1}', '01', '1.', '"\u0001"', 'undefined']) {
      assert.throws(() => Metadata.parse(text), PARSE_ERROR, `text ${JSON.stringify(text)}`);
    }
  });

  it('throws "Could not parse JSON: …" also for invalid text holding big integers', () => {
    // Text with long digit runs or "-0" goes through the bigint-safe parser, not JSON.parse.
    for (const text of [
      '12345678901234567 x',
      '[12345678901234567',
      '{"a":12345678901234567,}',
      '{"a" -0}',
      '[-0,]',
      '[-]',
      '{12345678901234567:1}',
      '"12345678901234567',
      'tru 12345678901234567',
    ]) {
      assert.throws(() => Metadata.parse(text), PARSE_ERROR, `text ${JSON.stringify(text)}`);
    }
  });

  it('reads the integer literal -0 as 0 and the float -0.0 as -0', () => {
    assert.ok(Object.is(Metadata.parse('-0').json, 0));
    assert.equal(Metadata.parse('-0').dump(), '0');
    assert.ok(Object.is(Metadata.parse('-0.0').json, -0));
    assert.equal(Metadata.parse('-0.0').dump(), '-0.0');
    assert.deepEqual(Metadata.parse('[-0,"-0"]').json, [0, '-0']);
  });

  it('keeps a "__proto__" key as an ordinary member', () => {
    for (const text of ['{"__proto__":{"x":1}}', '{"__proto__":{"x":1},"n":12345678901234567890}']) {
      const v = Metadata.parse(text).json as { [k: string]: Json };
      assert.ok(Object.prototype.hasOwnProperty.call(v, '__proto__'), text);
      assert.equal(Object.getPrototypeOf(v), Object.prototype, text);
      assert.deepEqual(Object.keys(v)[0], '__proto__');
      assert.equal(Metadata.parse(text).dump(), text);
    }
  });
});

describe('Metadata 64-bit integers', () => {
  it('parses integers beyond ±(2^53−1) as exact bigints', () => {
    const cases: [string, Json][] = [
      ['9007199254740991', 9007199254740991],
      ['-9007199254740991', -9007199254740991],
      ['9007199254740992', 9007199254740992n],
      ['9007199254740993', 9007199254740993n],
      ['-9007199254740993', -9007199254740993n],
      ['18446744073709551615', UINT64_MAX],
      ['9223372036854775807', 9223372036854775807n],
      ['-9223372036854775808', INT64_MIN],
      ['1234567890123456', 1234567890123456],
    ];
    for (const [text, value] of cases) {
      const v = Metadata.parse(text).json;
      assert.equal(typeof v, typeof value, text);
      assert.equal(v, value, text);
    }
  });

  it('round-trips uint64 and int64 values exactly through parse and dump', () => {
    const text = '{"a":[18446744073709551615,-9223372036854775808,9007199254740993],"b":{"c":18446744073709551614}}';
    const md = Metadata.parse(text);
    const v = md.json as { a: Json[]; b: { c: Json } };
    assert.deepEqual(v.a, [UINT64_MAX, INT64_MIN, 9007199254740993n]);
    assert.equal(v.b.c, UINT64_MAX - 1n);
    assert.equal(md.dump(), text);
    assert.equal(Metadata.parse(new Metadata(v).dump()).dump(), text);
  });

  it('writes bigint values as plain decimal integers', () => {
    assert.equal(new Metadata(UINT64_MAX).dump(), '18446744073709551615');
    assert.equal(new Metadata({ id: INT64_MIN, n: 5n }).dump(), '{"id":-9223372036854775808,"n":5}');
  });

  it('reads integers beyond the 64-bit ranges as floats, like the reference', () => {
    const big = Metadata.parse('18446744073709551616').json;
    assert.equal(typeof big, 'number');
    assert.equal(big, 18446744073709551616);
    const small = Metadata.parse('-9223372036854775809').json;
    assert.equal(typeof small, 'number');
    assert.equal(Metadata.parse('18446744073709551616').dump(), '1.8446744073709552e+19');
  });
});

describe('Metadata.parse of numbers beyond the double range', () => {
  it('refuses them like the reference (nlohmann: "number overflow parsing"), instead of storing null', () => {
    const digits = '1'.repeat(400);
    for (const [text, lit] of [
      ['1e400', '1e400'],
      ['-1.5E+999', '-1.5E+999'],
      ['{"a": [1, 2e0400]}', '2e0400'],
      [digits, digits],
      [`[-${digits}]`, `-${digits}`],
    ] as const) {
      assert.throws(
        () => Metadata.parse(text),
        (err: Error) => err.message.startsWith(`Could not parse JSON: number overflow parsing '${lit}'`),
        `text ${text.slice(0, 40)}`,
      );
    }
  });

  it('still accepts the largest doubles, underflow to 0 and exponents written with 3 digits', () => {
    assert.equal(Metadata.parse('1.7976931348623157e308').json, 1.7976931348623157e308);
    assert.equal(Metadata.parse('1e-400').json, 0);
    assert.equal(Metadata.parse('1e100').json, 1e100);
    assert.deepEqual(Metadata.parse('{"s":"e1000","n":5e-324}').json, { s: 'e1000', n: 5e-324 });
  });
});

describe('Metadata.fromString and Metadata.from', () => {
  it('fromString wraps the JSON string itself, without parsing it', () => {
    const md = Metadata.fromString('{"a":1}');
    assert.equal(md.json, '{"a":1}');
    assert.equal(md.string(), '{"a":1}');
    assert.equal(md.dump(), '"{\\"a\\":1}"');
    assert.equal(Metadata.fromString('not json').string(), 'not json');
  });

  it('from() parses a JS string as JSON text', () => {
    assert.deepEqual(Metadata.from('{"b":2,"a":1}').json, { a: 1, b: 2 });
    assert.equal(Metadata.from('"s"').string(), 's');
    assert.equal(Metadata.from('18446744073709551615').json, UINT64_MAX);
    assert.throws(() => Metadata.from('not json'), PARSE_ERROR);
  });

  it('from() returns a Metadata as it is and wraps other values', () => {
    const md = new Metadata({ a: 1 });
    assert.equal(Metadata.from(md), md);
    assert.deepEqual(Metadata.from({ x: [1] }).json, { x: [1] });
    assert.equal(Metadata.from(null).dump(), 'null');
    assert.equal(Metadata.from(3).dump(), '3');
    assert.equal(Metadata.from(7n).json, 7n);
  });
});

describe('Metadata.string', () => {
  it('returns the value of a JSON string', () => {
    assert.equal(new Metadata('hello').string(), 'hello');
    assert.equal(new Metadata('').string(), '');
    assert.equal(Metadata.parse('"a\\nb"').string(), 'a\nb');
  });

  it('throws "Metadata content is not a string" for any other value', () => {
    const err = diasporaError(ErrorCodes.INVALID_ARGUMENT, 'Metadata content is not a string');
    for (const v of [{}, [], ['a'], 1, 5n, null, true]) assert.throws(() => new Metadata(v).string(), err, JSON.stringify(String(v)));
    assert.throws(() => new Metadata().string(), err);
    assert.throws(() => Metadata.parse('{"a":"b"}').string(), err);
  });
});

describe('Metadata.dump canonical compact form', () => {
  it('sorts object keys at every level and writes no whitespace', () => {
    const md = new Metadata({ b: 1, a: { z: [3, { y: 1, x: 2 }], c: null }, B: true, '': 'e', aa: 0 });
    assert.equal(md.dump(), '{"":"e","B":true,"a":{"c":null,"z":[3,{"x":2,"y":1}]},"aa":0,"b":1}');
    assert.equal(Metadata.parse('{ "b" : 1 , "a" : 2 }').dump(), '{"a":2,"b":1}');
  });

  it('sorts keys by UTF-8 bytes (code points), not UTF-16 code units', () => {
    // U+FF5A (EF BD 9A) sorts before U+1F600 (F0 9F 98 80), although its UTF-16 unit is larger.
    const md = new Metadata({ '\u{1F600}': 1, '\uFF5A': 2, z: 3, é: 4 });
    assert.equal(md.dump(), '{"z":3,"é":4,"ｚ":2,"😀":1}');
    assert.equal(md.dump(2), '{\n  "z": 3,\n  "é": 4,\n  "ｚ": 2,\n  "😀": 1\n}');
  });

  it('escapes strings like nlohmann: short escapes, lowercase \\u00xx, everything else raw', () => {
    const s = '"\\\b\f\n\r\t\u0000\u0001\u001f /\u007f é € 😀';
    assert.equal(new Metadata(s).dump(), '"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f /\u007f é € 😀"');
    assert.equal(new Metadata({ 'k\n': 'v' }).dump(), '{"k\\n":"v"}');
  });

  it('writes integral numbers as integers and -0 as -0.0', () => {
    assert.equal(new Metadata(2).dump(), '2');
    assert.equal(Metadata.parse('2.0').dump(), '2');
    assert.equal(new Metadata(1500).dump(), '1500');
    assert.equal(new Metadata(1e15).dump(), '1000000000000000');
    assert.equal(new Metadata(Number.MAX_SAFE_INTEGER).dump(), '9007199254740991');
    assert.equal(new Metadata(-0).dump(), '-0.0');
  });

  it('formats floats like nlohmann', () => {
    const cases: [number, string][] = [
      [1.5, '1.5'],
      [-1.5, '-1.5'],
      [123.456, '123.456'],
      [0.5, '0.5'],
      [0.001, '0.001'],
      [0.0001, '0.0001'],
      [-0.0001, '-0.0001'],
      [1e-5, '1e-05'],
      [-1e-5, '-1e-05'],
      [1.5e-7, '1.5e-07'],
      [1e20, '1e+20'],
      [1e21, '1e+21'],
      [1e16, '1e+16'],
      [2 ** 53, '9.007199254740992e+15'],
      [1e100, '1e+100'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [5e-324, '5e-324'],
      [0.1 + 0.2, '0.30000000000000004'],
      [123456789012345.6, '123456789012345.6'],
      [1234567890123456.8, '1.2345678901234568e+15'],
    ];
    for (const [v, text] of cases) assert.equal(new Metadata(v).dump(), text, `${v}`);
  });

  it('writes NaN and ±Infinity as null', () => {
    assert.equal(new Metadata([NaN, Infinity, -Infinity]).dump(), '[null,null,null]');
  });

  it('reproduces parsed float text in the canonical layout', () => {
    assert.equal(Metadata.parse('[0.00001,1E20,1.50,1e-7,2.5e+3]').dump(), '[1e-05,1e+20,1.5,1e-07,2500]');
  });
});

describe('Metadata.dump(2) pretty form', () => {
  it('indents by two spaces, sorts keys, no trailing newline', () => {
    const md = new Metadata({ b: [1, { d: null, c: 'x' }], a: { e: true }, f: [], g: {} });
    assert.equal(
      md.dump(2),
      '{\n' +
        '  "a": {\n' +
        '    "e": true\n' +
        '  },\n' +
        '  "b": [\n' +
        '    1,\n' +
        '    {\n' +
        '      "c": "x",\n' +
        '      "d": null\n' +
        '    }\n' +
        '  ],\n' +
        '  "f": [],\n' +
        '  "g": {}\n' +
        '}',
    );
  });

  it('writes the default component file as exactly 23 bytes', () => {
    const text = new Metadata({ type: 'default' }).dump(2);
    assert.equal(text, '{\n  "type": "default"\n}');
    assert.equal(Buffer.byteLength(text), 23);
  });

  it('writes scalars and empty containers as in the compact form', () => {
    assert.equal(new Metadata({}).dump(2), '{}');
    assert.equal(new Metadata([]).dump(2), '[]');
    assert.equal(new Metadata('s').dump(2), '"s"');
    assert.equal(new Metadata(1e-5).dump(2), '1e-05');
    assert.equal(new Metadata([UINT64_MAX]).dump(2), '[\n  18446744073709551615\n]');
  });

  it('does not change the compact dump', () => {
    const md = new Metadata({ b: 1, a: 2 });
    md.dump(2);
    assert.equal(md.dump(), '{"a":2,"b":1}');
  });
});

describe('Metadata with lone surrogates', () => {
  it('cannot be serialized', () => {
    for (const v of ['\ud800', 'a\udc00b', '\udc00\ud800', { k: '\ud83d' }, ['ok', '\ude00']]) {
      assert.throws(() => new Metadata(v).dump(), INVALID_UTF16, JSON.stringify(v));
      assert.throws(() => new Metadata(v).dump(2), INVALID_UTF16, JSON.stringify(v));
    }
  });

  it('cannot be serialized in a key either', () => {
    assert.throws(() => new Metadata({ '\ud800': 1 }).dump(), INVALID_UTF16);
    assert.throws(() => new Metadata({ a: 1, '\udfff': 1 }).dump(2), INVALID_UTF16);
  });

  it('is refused when parsing escaped lone surrogates', () => {
    for (const text of ['"\\ud800"', '"\\uDC00"', '{"k":"x\\ud83dy"}', '{"\\ud800":1}']) {
      assert.throws(() => Metadata.parse(text), PARSE_ERROR, text);
    }
  });

  it('accepts well-formed surrogate pairs, escaped or raw', () => {
    assert.equal(Metadata.parse('"\\ud83d\\ude00"').string(), '😀');
    assert.equal(new Metadata('😀').dump(), '"😀"');
    assert.equal(Metadata.parse('"\\ud83d\\ude00"').dump(), '"😀"');
  });
});

describe('Metadata from stored bytes', () => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

  it('reads the value from the UTF-8 bytes', () => {
    const md = Metadata.fromCanonicalBytes(enc('{"a":[1,"é"],"n":18446744073709551615}'));
    assert.deepEqual(md.json, { a: [1, 'é'], n: UINT64_MAX });
  });

  it('dump() returns the stored text unchanged, even when not canonical', () => {
    const text = '{"b": 1,  "a":2.0, "c":"\\u00e9"}';
    const md = Metadata.fromCanonicalBytes(enc(text));
    assert.equal(md.dump(), text);
    assert.deepEqual(md.json, { a: 2, b: 1, c: 'é' });
    assert.equal(md.dump(), text, 'reading the value does not change the dump');
    assert.equal(md.dump(2), '{\n  "a": 2,\n  "b": 1,\n  "c": "é"\n}');
  });

  it('works on a Buffer and on a view into a larger array', () => {
    const whole = enc('xx{"k":1}yy');
    const view = whole.subarray(2, 9);
    assert.equal(Metadata.fromCanonicalBytes(view).dump(), '{"k":1}');
    assert.deepEqual(Metadata.fromCanonicalBytes(view).json, { k: 1 });
    assert.deepEqual(Metadata.fromCanonicalBytes(Buffer.from('[true]')).json, [true]);
  });

  it('gives deep-frozen values: modifying them throws', () => {
    const md = Metadata.fromCanonicalBytes(enc('{"a":{"b":[1,2]},"c":"x"}'));
    const v = md.json as { a: { b: number[] }; c: string; [k: string]: Json };
    assert.ok(Object.isFrozen(v));
    assert.ok(Object.isFrozen(v.a));
    assert.ok(Object.isFrozen(v.a.b));
    // ES modules are strict mode code: writes to frozen objects throw.
    assert.throws(() => {
      v.c = 'y';
    }, TypeError);
    assert.throws(() => {
      v.d = 1;
    }, TypeError);
    assert.throws(() => {
      delete (v as { c?: string }).c;
    }, TypeError);
    assert.throws(() => {
      v.a.b.push(3);
    }, TypeError);
    assert.throws(() => {
      v.a.b[0] = 9;
    }, TypeError);
    assert.deepEqual(md.json, { a: { b: [1, 2] }, c: 'x' });
    assert.equal(md.dump(), '{"a":{"b":[1,2]},"c":"x"}');
  });

  it('fromCanonicalText behaves the same way', () => {
    const text = '{"z":1,"a":[0.5]}';
    const md = Metadata.fromCanonicalText(text);
    assert.equal(md.dump(), text);
    const v = md.json as { a: number[] };
    assert.deepEqual(v, { z: 1, a: [0.5] });
    assert.ok(Object.isFrozen(v) && Object.isFrozen(v.a));
    assert.throws(() => {
      v.a[0] = 1;
    }, TypeError);
  });

  it('raises the parse error of invalid stored text when the value is read', () => {
    const md = Metadata.fromCanonicalBytes(enc('{"a":'));
    assert.throws(() => md.json, PARSE_ERROR);
    assert.throws(() => md.string(), PARSE_ERROR);
    assert.throws(() => Metadata.fromCanonicalText('[1,').json, PARSE_ERROR);
  });

  it('values built from a JS value are not frozen', () => {
    const v = { a: [1] };
    const md = new Metadata(v);
    assert.equal(md.json, v);
    assert.equal(Object.isFrozen(md.json), false);
    assert.equal(Object.isFrozen(Metadata.parse('{"a":[1]}').json), false);
  });
});
