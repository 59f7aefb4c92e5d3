import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  compileJsonSchema,
  validateSchemaDefinition,
  containsBigint,
  SCHEMA_REJECTION_PREFIX,
} from '../../../src/api/validators/json-schema.js';
import { DiasporaError, ErrorCodes, InvalidMetadata } from '../../../src/api/errors.js';
import { parseJson, type Json } from '../../../src/api/json.js';
import { fixturesDir } from '../../helpers/fixtures.js';

const PREFIX = 'Metadata does not comply to required schema:\n';
const LINE = /^'(|(\/[^']*)+)' - '.*': .+$/;

const personSchema: Json = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1 },
    value: { type: 'number', minimum: 0 },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['name', 'value'],
  additionalProperties: false,
};

function assertInvalidSchema(schema: Json, detail?: string | RegExp): void {
  assert.throws(
    () => compileJsonSchema(schema),
    (err: unknown) => {
      assert.ok(err instanceof DiasporaError);
      assert.ok(!(err instanceof InvalidMetadata));
      assert.equal(err.code, ErrorCodes.CONFIG);
      assert.ok(err.message.startsWith('Invalid JSON schema: '), err.message);
      if (typeof detail === 'string') assert.equal(err.message, `Invalid JSON schema: ${detail}`);
      else if (detail) assert.match(err.message, detail);
      return true;
    },
  );
  assert.throws(() => validateSchemaDefinition(schema), (err: unknown) => err instanceof DiasporaError && err.message.startsWith('Invalid JSON schema: '));
}

describe('json-schema: valid / invalid', () => {
  const v = compileJsonSchema(personSchema);

  test('valid values give undefined', () => {
    assert.equal(v({ name: 'a', value: 1 }), undefined);
    assert.equal(v({ name: 'a', value: 0, tags: [] }), undefined);
    assert.equal(v({ name: 'a', value: 2.5, tags: ['x', 'y'] }), undefined);
  });

  test('one error: exact prefix and line', () => {
    assert.equal(v({ name: 'a' }), `${PREFIX}'' - '{"name":"a"}': must have required property 'value'`);
    assert.equal(v({ name: 'a', value: -1 }), `${PREFIX}'/value' - '-1': must be >= 0`);
  });

  test('several errors: one line each, joined by \\n', () => {
    const msg = v({ name: 3, value: 'v', tags: [1] });
    assert.equal(
      msg,
      PREFIX +
        [`'/name' - '3': must be string`, `'/value' - '"v"': must be number`, `'/tags/0' - '1': must be string`].join('\n'),
    );
  });

  test('offending value is canonical compact JSON (sorted keys)', () => {
    const msg = v({ value: 1, name: 'a', x: { b: 1, a: [true, null] } });
    assert.equal(msg, `${PREFIX}'' - '{"name":"a","value":1,"x":{"a":[true,null],"b":1}}': must NOT have additional properties`);
  });

  test('top-level type mismatch', () => {
    assert.equal(v([1, 2]), `${PREFIX}'' - '[1,2]': must be object`);
    assert.equal(v('s'), `${PREFIX}'' - '"s"': must be object`);
    assert.equal(v(null), `${PREFIX}'' - 'null': must be object`);
  });

  test('JSON pointer escaping of member names', () => {
    const f = compileJsonSchema({ properties: { 'a/b': { type: 'string' }, 'c~d': { type: 'string' } } });
    assert.equal(f({ 'a/b': 1, 'c~d': 2 }), `${PREFIX}'/a~1b' - '1': must be string\n'/c~0d' - '2': must be string`);
  });

  test('formats (ajv-formats) are enforced', () => {
    const f = compileJsonSchema({ type: 'string', format: 'email' });
    assert.equal(f('a@b.org'), undefined);
    assert.equal(f('nope'), `${PREFIX}'' - '"nope"': must match format "email"`);
    const d = compileJsonSchema({ type: 'string', format: 'date-time' });
    assert.equal(d('2024-01-02T03:04:05Z'), undefined);
    assert.equal(d('yesterday'), `${PREFIX}'' - '"yesterday"': must match format "date-time"`);
  });

  test('draft-07 features: boolean schemas, if/then, const', () => {
    assert.equal(compileJsonSchema(true)({ any: 1 }), undefined);
    assert.equal(compileJsonSchema(false)(1), `${PREFIX}'' - '1': boolean schema is false`);
    const f = compileJsonSchema({ if: { properties: { k: { const: 'a' } } }, then: { required: ['x'] } });
    assert.equal(f({ k: 'b' }), undefined);
    assert.equal(f({ k: 'a', x: 1 }), undefined);
    const msg = f({ k: 'a' }) as string;
    assert.ok(msg.startsWith(PREFIX));
    assert.deepEqual(msg.slice(PREFIX.length).split('\n'), [
      `'' - '{"k":"a"}': must have required property 'x'`,
      `'' - '{"k":"a"}': must match "then" schema`,
    ]);
  });

  test('every line has the stable shape', () => {
    const msg = v({ name: '', value: -1, tags: [1, 'a', {}], extra: true }) as string;
    assert.ok(msg.startsWith(PREFIX));
    const lines = msg.slice(PREFIX.length).split('\n');
    assert.equal(lines.length, 5);
    for (const line of lines) assert.match(line, LINE);
  });

  test('SCHEMA_REJECTION_PREFIX', () => {
    assert.equal(SCHEMA_REJECTION_PREFIX, PREFIX);
  });
});

describe('json-schema: invalid schemas', () => {
  test('meta-schema violation', () => {
    assertInvalidSchema(
      { type: 'foo' },
      'schema is invalid: data/type must be equal to one of the allowed values, data/type must be array, data/type must match a schema in anyOf',
    );
    assertInvalidSchema({ properties: 3 }, 'schema is invalid: data/properties must be object');
  });

  test('unresolvable $ref and unknown $schema', () => {
    assertInvalidSchema({ $ref: 'http://example.com/nope.json' }, "can't resolve reference http://example.com/nope.json from id #");
    assertInvalidSchema({ $schema: 'https://json-schema.org/draft/2020-12/schema' }, 'no schema with key or ref "https://json-schema.org/draft/2020-12/schema"');
  });

  test('bad regular expression', () => {
    assertInvalidSchema({ type: 'string', pattern: '(' }, /^Invalid JSON schema: Invalid regular expression: .*\(/);
  });

  test('not an object or boolean', () => {
    for (const s of [1, 'x', null, [], 5n] as Json[]) {
      assertInvalidSchema(s, 'schema must be an object or a boolean');
    }
  });

  test('validateSchemaDefinition accepts valid schemas', () => {
    assert.equal(validateSchemaDefinition(personSchema), undefined);
    assert.equal(validateSchemaDefinition({}), undefined);
    assert.equal(validateSchemaDefinition(true), undefined);
  });
});

describe('json-schema: caching and $id', () => {
  test('same canonical schema compiles once and behaves the same', () => {
    const a = compileJsonSchema({ type: 'integer', maximum: 3 });
    const b = compileJsonSchema(parseJson('{"maximum":3,"type":"integer"}'));
    assert.equal(a(4), `${PREFIX}'' - '4': must be <= 3`);
    assert.equal(b(4), `${PREFIX}'' - '4': must be <= 3`);
    assert.equal(a(2), undefined);
    assert.equal(b(2.5), `${PREFIX}'' - '2.5': must be integer`);
  });

  test('two different schemas with the same $id do not clash', () => {
    const a = compileJsonSchema({ $id: 'http://example.com/s.json', type: 'string' });
    const b = compileJsonSchema({ $id: 'http://example.com/s.json', type: 'number' });
    assert.equal(a('x'), undefined);
    assert.equal(a(1), `${PREFIX}'' - '1': must be string`);
    assert.equal(b(1), undefined);
    assert.equal(b('x'), `${PREFIX}'' - '"x"': must be number`);
  });

  test('internal $ref / definitions', () => {
    const f = compileJsonSchema({
      definitions: { pos: { type: 'integer', minimum: 1 } },
      properties: { a: { $ref: '#/definitions/pos' } },
    });
    assert.equal(f({ a: 1 }), undefined);
    assert.equal(f({ a: 0 }), `${PREFIX}'/a' - '0': must be >= 1`);
  });
});

describe('json-schema: bigint', () => {
  test('containsBigint', () => {
    assert.equal(containsBigint({ a: [1, { b: 2 }], c: 'x' }), false);
    assert.equal(containsBigint({ a: [1, { b: 2n }] }), true);
    assert.equal(containsBigint(3n), true);
    assert.equal(containsBigint(null), false);
    assert.equal(containsBigint(parseJson('{"__proto__": 18446744073709551615}')), true);
  });

  test('bigint values are numbers to ajv; printed exactly in messages', () => {
    const f = compileJsonSchema({ properties: { id: { type: 'integer', minimum: 0 }, n: { type: 'number', maximum: 10 } } });
    assert.equal(f({ id: 18446744073709551615n }), undefined);
    assert.equal(f({ id: -9223372036854775808n }), `${PREFIX}'/id' - '-9223372036854775808': must be >= 0`);
    assert.equal(f({ n: 9007199254740993n }), `${PREFIX}'/n' - '9007199254740993': must be <= 10`);
    const parsed = parseJson('{"id": 9223372036854775807, "n": 12345678901234567}');
    assert.equal(typeof (parsed as { id: Json }).id, 'bigint');
    assert.equal(f(parsed), `${PREFIX}'/n' - '12345678901234567': must be <= 10`);
  });

  test('bigint type checks: a bigint is not a string', () => {
    const f = compileJsonSchema({ type: 'string' });
    assert.equal(f(12345678901234567890n), `${PREFIX}'' - '12345678901234567890': must be string`);
  });

  test('the original value is not modified', () => {
    const f = compileJsonSchema({ type: 'object' });
    const value: Json = { a: 9223372036854775807n, b: [1n << 60n] };
    assert.equal(f(value), undefined);
    assert.deepEqual(value, { a: 9223372036854775807n, b: [1n << 60n] });
  });

  test('bigint in the schema', () => {
    const f = compileJsonSchema({ type: 'integer', maximum: 9223372036854775807n });
    assert.equal(f(5), undefined);
    assert.equal(f(9223372036854775807n), undefined);
    // ajv's message shows the operand as the JS number it saw
    assert.equal(f(1e30), `${PREFIX}'' - '1e+30': must be <= 9223372036854776000`);
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
  create: { validator: { schema: Json } };
  components: { validator: { schema: Json }; serializer: { schema?: Json } };
  sessions: { ops: FixtureOp[] }[];
}
interface Manifest {
  topics: FixtureTopic[];
  'invalid-examples': { topic: string; push_index: number; metadata_text: string; message: string }[];
}

describe('json-schema: golden fixture replay', () => {
  const path = findManifest();
  test('fixture manifest is available', () => {
    assert.ok(path !== undefined, 'files-driver/manifest.json not found (set DIASPORA_FIXTURES_DIR)');
  });
  if (path === undefined) return;
  const manifest = parseJson(readFileSync(path, 'utf8')) as unknown as Manifest;
  const topic = manifest.topics.find((t) => t.name === 'schema') as FixtureTopic;

  /** Number of error lines the reference produced (its lines are concatenated without separator). */
  const referenceLineCount = (message: string): number =>
    (message.slice(PREFIX.length).match(/'(\/[^']*)?' - '/g) ?? []).length;

  test('pushes: same accept/reject verdicts, same prefix, same pointers and line count', () => {
    assert.ok(topic !== undefined);
    const fromCreate = compileJsonSchema(topic.create.validator.schema);
    const fromPersisted = compileJsonSchema(topic.components.validator.schema);
    let pushes = 0;
    let rejected = 0;
    for (const session of topic.sessions) {
      for (const op of session.ops) {
        if (op.op !== 'push') continue;
        pushes++;
        const md = parseJson(op.metadata_text as string);
        const a = fromCreate(md);
        const b = fromPersisted(md);
        assert.equal(a, b);
        if (op.rejected === undefined) {
          assert.equal(a, undefined, `push ${op.push_index} must be accepted`);
          continue;
        }
        rejected++;
        assert.ok(op.rejected.message.startsWith(PREFIX));
        assert.ok(a !== undefined && a.startsWith(PREFIX), `push ${op.push_index} must be rejected`);
        const lines = a.slice(PREFIX.length).split('\n');
        for (const line of lines) assert.match(line, LINE);
        assert.equal(lines.length, referenceLineCount(op.rejected.message), `push ${op.push_index}: ${a}`);
        // Every pointer/value pair the reference reported appears in our lines.
        const refPairs = op.rejected.message.slice(PREFIX.length).match(/'(\/[^']*)?' - '(?:[^']|'(?!:))*':/g) ?? [];
        const ourPairs = lines.map((l) => l.slice(0, l.indexOf("': ") + 2));
        assert.deepEqual([...ourPairs].sort(), [...refPairs].sort(), `push ${op.push_index}`);
      }
    }
    assert.equal(pushes, 8);
    assert.equal(rejected, 5);
  });

  test('exact messages for the fixture rejections', () => {
    const f = compileJsonSchema(topic.components.validator.schema);
    const ours = manifest['invalid-examples']
      .filter((e) => e.topic === 'schema')
      .map((e) => [e.push_index, f(parseJson(e.metadata_text))]);
    assert.deepEqual(ours, [
      [47, `${PREFIX}'' - '{"name":"a"}': must have required property 'value'`],
      [49, `${PREFIX}'/name' - '""': must NOT have fewer than 1 characters\n'/value' - '-1': must be >= 0`],
      [50, `${PREFIX}'' - '{"name":"a","value":1,"x":2}': must NOT have additional properties`],
      [51, `${PREFIX}'/name' - '3': must be string\n'/value' - '"v"': must be number\n'/tags/0' - '1': must be string`],
      [52, `${PREFIX}'' - '[1,2]': must be object`],
    ]);
  });
});
