/**
 * Consumer positions of the files driver (files-driver.md §10.1, api.md §9, §13.5):
 * `consumers/<encoded name>.json` format and name encoding, restart at the committed position,
 * reset by deleting the file, foreign files ignored with a warning, `consumer_state: false`,
 * every `flush_behavior`, and the reference layout left untouched by consuming.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver, dumpPretty, parseJson, setLogSink, type Json, type LogLevel } from '../../../src/index.js';
import { hashTree, rmDir, tempDir } from './mp-helpers.js';

type Opts = Record<string, Json>;

async function withTopic<T>(opts: Opts, partitions: number, fn: (d: Driver, root: string) => Promise<T>): Promise<T> {
  const root = tempDir('ds-positions-');
  const d = await Driver.create('files', { ...opts, root_path: root });
  try {
    await d.createTopic('pos', { options: { num_partitions: partitions } });
    return await fn(d, root);
  } finally {
    await d.close();
    rmDir(root);
  }
}

async function produce(d: Driver, perPartition: number[]): Promise<void> {
  const h = await d.openTopic('pos');
  const p = await h.producer();
  for (const [part, n] of perPartition.entries()) for (let i = 0; i < n; i++) void p.push({ part, i }, Buffer.from(`d${part}-${i}`), { partition: part });
  await p.close();
  await h.close();
}

/** Opens consumer `name`, pulls `n` events (each within 5 s), acknowledges those selected, closes. Returns [partition, id] of each. */
async function consume(
  d: Driver,
  name: string,
  n: number,
  ack: (i: number) => boolean = () => true,
  o: { ackIntervalMs?: number; awaitAcks?: boolean } = {},
): Promise<[number, number][]> {
  const h = await d.openTopic('pos');
  const c = await h.consumer(name, { ackIntervalMs: o.ackIntervalMs ?? 0 });
  const got: [number, number][] = [];
  const acks: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const e = await c.pull().wait(5000);
    assert.ok(e !== undefined, `event ${i} for consumer ${name}`);
    got.push([e.partitionIndex, Number(e.id)]);
    if (ack(i)) acks.push(Promise.resolve(e.acknowledge()));
  }
  if (o.awaitAcks ?? true) await Promise.all(acks);
  await c.close();
  await h.close();
  return got;
}

/**
 * First event consumer `name` gets now ([partition, id]), or undefined after `ms` (300 where none is expected; an
 * expected event gets 5 s, so that a stalled machine does not turn into "none").
 */
async function firstEvent(d: Driver, name: string, ms = 5000): Promise<[number, number] | undefined> {
  const h = await d.openTopic('pos');
  const c = await h.consumer(name);
  const e = await c.pull().wait(ms);
  await c.close();
  await h.close();
  return e === undefined ? undefined : [e.partitionIndex, Number(e.id)];
}

function consumersDir(root: string): string {
  return join(root, 'pos', 'consumers');
}

function readPositions(root: string, file: string): Record<string, Json> {
  return parseJson(fs.readFileSync(join(consumersDir(root), file), 'utf8')) as Record<string, Json>;
}

/** Everything of the topic except consumers/ (what the reference reads). */
function referenceView(root: string): Map<string, string> {
  return new Map([...hashTree(join(root, 'pos'))].filter(([k]) => !k.startsWith('consumers/')));
}

function captureLogs(): { logs: { level: LogLevel; message: string }[]; restore: () => void } {
  const logs: { level: LogLevel; message: string }[] = [];
  setLogSink((level, message) => logs.push({ level, message }));
  return { logs, restore: () => setLogSink(undefined) };
}

describe('files driver: consumer positions', () => {
  it('file format: consumers/<encoded>.json with format, name, positions by partition directory, updated_at', { timeout: 20_000 }, async () => {
    await withTopic({}, 2, async (d, root) => {
      await produce(d, [6, 4]);
      const ref0 = referenceView(root);
      const t0 = Date.now();
      const got = await consume(d, 'a/b c', 10);
      assert.equal(got.length, 10);
      assert.deepEqual(fs.readdirSync(consumersDir(root)), ['a%2Fb%20c.json'], 'one file, no temporary left');
      const text = fs.readFileSync(join(consumersDir(root), 'a%2Fb%20c.json'), 'utf8');
      const doc = parseJson(text) as Record<string, Json>;
      assert.equal(text, dumpPretty(doc), 'pretty canonical JSON, no trailing newline');
      assert.deepEqual(Object.keys(doc), ['format', 'name', 'positions', 'updated_at']);
      assert.equal(doc['format'], 1);
      assert.equal(doc['name'], 'a/b c');
      assert.deepEqual(doc['positions'], { '00000000': 6, '00000001': 4 });
      const at = doc['updated_at'] as string;
      assert.match(at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      assert.ok(Math.abs(Date.parse(at) - t0) < 60_000);
      // mode 0644
      assert.equal(fs.statSync(join(consumersDir(root), 'a%2Fb%20c.json')).mode & 0o777, 0o644);
      assert.deepEqual(referenceView(root), ref0, 'consuming changed nothing outside consumers/');

      // restart: everything was acknowledged; a new event arrives at the committed position
      assert.equal(await firstEvent(d, 'a/b c', 300), undefined);
      await produce(d, [1, 0]);
      assert.deepEqual(await firstEvent(d, 'a/b c'), [0, 6]);
    });
  });

  it('restart at the committed position (lowest unacknowledged); deleting the file resets to 0', { timeout: 20_000 }, async () => {
    await withTopic({}, 1, async (d, root) => {
      await produce(d, [10]);
      await consume(d, 'worker', 10, (i) => i < 4);
      assert.deepEqual(readPositions(root, 'worker.json')['positions'], { '00000000': 4 });
      assert.deepEqual(await firstEvent(d, 'worker'), [0, 4]);

      // acknowledged 4,5,7 after restarting at 4 → 6; the acknowledgement of 7 resolves only
      // once a durable position covers it (here: when the consumer closes)
      {
        const h = await d.openTopic('pos');
        const c = await h.consumer('worker', { ackIntervalMs: 0 });
        const ids: number[] = [];
        const acks = new Map<number, { done: boolean; p: Promise<void> }>();
        for (let i = 0; i < 6; i++) {
          const e = await c.pull().wait(5000);
          assert.ok(e !== undefined);
          ids.push(Number(e.id));
          if (i === 0 || i === 1 || i === 3) {
            const a = { done: false, p: Promise.resolve(e.acknowledge()) };
            void a.p.then(() => (a.done = true));
            acks.set(Number(e.id), a);
          }
        }
        assert.deepEqual(ids, [4, 5, 6, 7, 8, 9]);
        await acks.get(4)?.p;
        await acks.get(5)?.p;
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(acks.get(7)?.done, false, 'ack of 7 not covered by position 6');
        assert.deepEqual(readPositions(root, 'worker.json')['positions'], { '00000000': 6 });
        await c.close();
        await acks.get(7)?.p;
        await h.close();
      }
      assert.deepEqual(readPositions(root, 'worker.json')['positions'], { '00000000': 6 });
      assert.deepEqual(await firstEvent(d, 'worker'), [0, 6]);

      // acknowledgements persisted by close() with the default ackIntervalMs (1 s), acks not awaited
      await consume(d, 'lazy', 3, () => true, { ackIntervalMs: 1000, awaitAcks: false });
      assert.deepEqual(readPositions(root, 'lazy.json')['positions'], { '00000000': 3 });

      fs.rmSync(join(consumersDir(root), 'worker.json'));
      assert.deepEqual(await firstEvent(d, 'worker'), [0, 0], 'reset to 0');
      // an anonymous consumer persists nothing
      await consume(d, '', 2);
      assert.deepEqual(fs.readdirSync(consumersDir(root)).sort(), ['lazy.json']);
    });
  });

  it('name encoding: %XX escapes, leading dot, > 200 bytes → 150 bytes + ~ + 16 hex of SHA-256', { timeout: 30_000 }, async () => {
    const sha16 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 16);
    const long = 'n'.repeat(250);
    const accents = 'é'.repeat(40); // 240 bytes encoded
    const cases: [string, string][] = [
      ['a/b c', 'a%2Fb%20c'],
      ['.hidden', '%2Ehidden'],
      ['x.y_z-AZ09', 'x.y_z-AZ09'],
      ['..', '%2E.'],
      ['é~%', '%C3%A9%7E%25'],
      ['n'.repeat(200), 'n'.repeat(200)],
      ['n'.repeat(201), 'n'.repeat(150) + '~' + sha16('n'.repeat(201))],
      [long, 'n'.repeat(150) + '~' + sha16(long)],
      [accents, '%C3%A9'.repeat(25) + '~' + sha16(accents)],
    ];
    await withTopic({}, 1, async (d, root) => {
      await produce(d, [3]);
      for (const [k, [name, encoded]] of cases.entries()) {
        await consume(d, name, 1 + (k % 3));
        const file = `${encoded}.json`;
        assert.ok(fs.existsSync(join(consumersDir(root), file)), `${JSON.stringify(name)} → ${file}; have ${fs.readdirSync(consumersDir(root)).join(', ')}`);
        const doc = readPositions(root, file);
        assert.equal(doc['name'], name);
        assert.deepEqual(doc['positions'], { '00000000': 1 + (k % 3) });
        assert.deepEqual(await firstEvent(d, name, k % 3 === 2 ? 300 : 5000), k % 3 === 2 ? undefined : [0, 1 + (k % 3)], `restart of ${JSON.stringify(name)}`);
      }
      assert.equal(fs.readdirSync(consumersDir(root)).length, cases.length);
    });
  });

  it('a positions file of another name, or of an unknown format, is ignored with a warning', { timeout: 20_000 }, async () => {
    await withTopic({}, 1, async (d, root) => {
      await produce(d, [5]);
      fs.mkdirSync(consumersDir(root));
      const file = join(consumersDir(root), 'bob.json');
      fs.writeFileSync(file, dumpPretty({ format: 1, name: 'alice', positions: { '00000000': 3 }, updated_at: '2024-01-01T00:00:00.000Z' }));
      const cap = captureLogs();
      try {
        assert.deepEqual(await firstEvent(d, 'bob'), [0, 0], 'the foreign file is ignored');
        const w = cap.logs.filter((l) => l.level === 'warning');
        assert.equal(w.length, 1, JSON.stringify(cap.logs));
        assert.ok(w[0]?.message.includes(file) && w[0].message.includes('alice'), w[0]?.message);

        fs.writeFileSync(file, dumpPretty({ format: 2, name: 'bob', positions: { '00000000': 3 }, updated_at: '2024-01-01T00:00:00.000Z' }));
        assert.deepEqual(await firstEvent(d, 'bob'), [0, 0], 'unknown format is ignored');
        const w2 = cap.logs.filter((l) => l.level === 'warning');
        assert.equal(w2.length, 2);
        assert.match(w2[1]?.message ?? '', /unknown format/);

        fs.writeFileSync(file, dumpPretty({ format: 1, name: 'bob', positions: { '00000000': 3 }, updated_at: '2024-01-01T00:00:00.000Z' }));
        assert.deepEqual(await firstEvent(d, 'bob'), [0, 3], 'a matching file is used');
        assert.equal(cap.logs.filter((l) => l.level === 'warning').length, 2);
      } finally {
        cap.restore();
      }
      // committing over a foreign file replaces it with ours
      await consume(d, 'bob', 1);
      assert.equal(readPositions(root, 'bob.json')['name'], 'bob');
    });
  });

  it('a position that is not a non-negative integer, or positions that are not an object, are ignored with a warning naming them', { timeout: 20_000 }, async () => {
    await withTopic({}, 2, async (d, root) => {
      await produce(d, [5, 5]);
      fs.mkdirSync(consumersDir(root));
      const file = join(consumersDir(root), 'carol.json');
      fs.writeFileSync(file, dumpPretty({ format: 1, name: 'carol', positions: { '00000000': 3, '00000001': 'x' }, updated_at: '2024-01-01T00:00:00.000Z' }));
      const cap = captureLogs();
      try {
        const h = await d.openTopic('pos');
        const c = await h.consumer('carol');
        const seen = new Map<number, number>();
        for (let k = 0; k < 7; k++) {
          const e = await c.pull().wait(5000);
          assert.ok(e !== undefined);
          if (!seen.has(e.partitionIndex)) seen.set(e.partitionIndex, Number(e.id));
        }
        await c.close();
        await h.close();
        assert.deepEqual([...seen].sort(), [[0, 3], [1, 0]], 'the valid position is used, the invalid one read from the start');
        const w = cap.logs.filter((l) => l.level === 'warning').map((l) => l.message);
        assert.equal(w.length, 1, JSON.stringify(cap.logs));
        assert.ok(w[0]?.includes('00000001') && w[0].includes(file) && w[0].includes('"x"'), w[0]);

        fs.writeFileSync(file, dumpPretty({ format: 1, name: 'carol', positions: [3], updated_at: '2024-01-01T00:00:00.000Z' }));
        assert.deepEqual(await firstEvent(d, 'carol'), [0, 0]);
        const w2 = cap.logs.filter((l) => l.level === 'warning').map((l) => l.message);
        assert.equal(w2.length, 2, JSON.stringify(cap.logs));
        assert.match(w2[1] ?? '', /"positions" is not an object/);
      } finally {
        cap.restore();
      }
    });
  });

  it('consumer_state: false persists nothing', { timeout: 20_000 }, async () => {
    await withTopic({ consumer_state: false }, 1, async (d, root) => {
      await produce(d, [4]);
      await consume(d, 'named', 3);
      assert.equal(fs.existsSync(consumersDir(root)), false);
      assert.deepEqual(await firstEvent(d, 'named'), [0, 0]);
      assert.equal(fs.existsSync(consumersDir(root)), false);
    });
  });

  for (const flush of ['immediate', 'on_flush', 'buffered'] as const) {
    it(`flush_behavior ${flush}: positions persisted and used on restart; reference files untouched`, { timeout: 20_000 }, async () => {
      await withTopic({ flush_behavior: flush }, 2, async (d, root) => {
        await produce(d, [3, 3]);
        const ref0 = referenceView(root);
        const got = await consume(d, 'c1', 4);
        const next = [0, 0];
        for (const [p, id] of got) next[p] = Math.max(next[p] as number, id + 1);
        assert.deepEqual(readPositions(root, 'c1.json')['positions'], { '00000000': next[0], '00000001': next[1] });
        const rest = await consume(d, 'c1', 2);
        assert.deepEqual(
          rest.sort(),
          [0, 1].flatMap((p) => Array.from({ length: 3 - (next[p] as number) }, (_, k) => [p, (next[p] as number) + k] as [number, number])).sort(),
        );
        assert.deepEqual(referenceView(root), ref0, 'consuming changed nothing outside consumers/');
        assert.deepEqual(fs.readdirSync(consumersDir(root)), ['c1.json']);
      });
    });
  }
});
