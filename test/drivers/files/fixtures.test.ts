/**
 * Golden fixtures written by the reference C++ files driver (shared/fixtures/files-driver):
 * (a) we read every topic and get exactly the events of the manifest, in the reference order,
 *     without modifying or creating any file;
 * (b) replaying the manifest's pushes produces byte-identical files. The one allowed difference
 *     (files-driver.md §5): a double with an integral value given as a JS number is written as an
 *     integer (`2.0` → `2`); for such records we check that this is the only difference.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver, Metadata, parseJson, dumpCompact, type Json } from '../../../src/index.js';
import { fixturesDir } from '../../helpers/fixtures.js';

interface ManifestEvent {
  partition: number;
  event_id: number;
  metadata_json: string;
  data_b64: string;
  index_entry: [number, number, number, number];
}
interface PushOp {
  op: 'push' | 'flush';
  metadata_arg?: 'value' | 'json-text';
  metadata_text?: string;
  data_segments_b64?: string[];
  partition?: number | null;
  event_id?: number;
  selected_partition?: number;
  rejected?: { raised_at: string; message: string };
}
interface Topic {
  name: string;
  create: { options: Json; validator: Json; serializer: Json; partition_selector: Json };
  num_partitions: number;
  component_files: Record<string, string>;
  sessions: { producer: { name: string; batch_size: number | 'adaptive'; ordering: 'strict' | 'loose' }; ops: PushOp[] }[];
  events: ManifestEvent[];
  reference_consumer_order: [number, number][];
  files: Record<string, { size: number; sha256: string }>;
}

const root = join(fixturesDir(), 'files-driver');
const manifest = parseJson(fs.readFileSync(join(root, 'manifest.json'), 'utf8')) as unknown as { topics: Topic[] };

function sha256(path: string): string {
  return createHash('sha256').update(fs.readFileSync(path)).digest('hex');
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (fs.statSync(p).isDirectory()) out.push(...listFiles(p, prefix + name + '/'));
    else out.push(prefix + name);
  }
  return out;
}

/** A metadata record as the default serializer writes it. */
function record(json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  return Buffer.concat([len, body]);
}

/** True when `ours` differs from `theirs` only by integral doubles written as integers (2.0 → 2, 1e+15 → 1000000000000000). */
function differsOnlyByIntegralDoubles(theirs: string, ours: string): boolean {
  return dumpCompact(parseJson(theirs)) === ours;
}

describe('files driver: reading the reference golden fixtures', () => {
  let work: string;
  before(() => {
    work = fs.mkdtempSync(join(tmpdir(), 'ds-fixtures-read-'));
    fs.cpSync(root, work, { recursive: true });
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  for (const topic of manifest.topics) {
    it(`reads topic ${topic.name} exactly as the manifest says, in the reference order`, async () => {
      const before = new Map(listFiles(join(work, topic.name)).map((f) => [f, sha256(join(work, topic.name, f))]));
      const driver = await Driver.create('files', { root_path: work });
      try {
        const t = await driver.openTopic(topic.name);
        assert.equal(t.partitions.length, topic.num_partitions);
        const c = await t.consumer('');
        const got: [number, number][] = [];
        for (;;) {
          const e = await c.pull().wait(topic.events.length === 0 ? 200 : 1000);
          if (e === undefined) break;
          got.push([e.partitionIndex, Number(e.id)]);
          const expected = topic.events.find((x) => x.partition === e.partitionIndex && x.event_id === Number(e.id));
          assert.ok(expected, `unexpected event ${e.partitionIndex}#${e.id}`);
          // the metadata value equals the parse of the reference's exact bytes, and dump() reproduces them
          assert.deepEqual(e.metadata.json, parseJson(expected.metadata_json));
          assert.equal(e.metadata.dump(), expected.metadata_json);
          assert.equal(e.data.toBuffer().toString('base64'), expected.data_b64);
          assert.deepEqual(e.headers, {});
          if (got.length === topic.events.length) {
            assert.equal(await c.pull().wait(100), undefined, 'no event beyond the manifest');
            break;
          }
        }
        assert.deepEqual(got, topic.reference_consumer_order);
        await c.close();
        await t.close();
      } finally {
        await driver.close();
      }
      // readers never create or modify files
      const after = new Map(listFiles(join(work, topic.name)).map((f) => [f, sha256(join(work, topic.name, f))]));
      assert.deepEqual(after, before);
    });
  }

  it('lists the fixture topics like the reference (listing.txt, as a set)', async () => {
    const driver = await Driver.create('files', { root_path: work });
    const topics = await driver.listTopics();
    const ours = [...topics].map(([name, v]) => `${name} ${dumpCompact(v)}`.replaceAll(work + '/', '<ROOT>/'));
    const theirs = fs.readFileSync(join(root, 'listing.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
    assert.deepEqual(new Set(ours), new Set(theirs));
    await driver.close();
  });
});

describe('files driver: writing byte-identical files (replay of the reference pushes)', () => {
  let work: string;
  before(() => {
    work = fs.mkdtempSync(join(tmpdir(), 'ds-fixtures-write-'));
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  for (const topic of manifest.topics) {
    it(`replays topic ${topic.name}`, async () => {
      const driver = await Driver.create('files', { root_path: work, use_file_locking: false });
      const create = topic.create;
      await driver.createTopic(topic.name, {
        options: create.options,
        ...(create.validator !== null ? { validator: create.validator } : {}),
        ...(create.serializer !== null ? { serializer: create.serializer } : {}),
        ...(create.partition_selector !== null ? { partitionSelector: create.partition_selector } : {}),
      });
      for (const session of topic.sessions) {
        const t = await driver.openTopic(topic.name); // a fresh handle: the round-robin counter restarts
        const p = await t.producer({ name: session.producer.name, batchSize: session.producer.batch_size, ordering: session.producer.ordering });
        const pending: { f: ReturnType<typeof p.push>; expected: bigint; what: string }[] = [];
        for (const op of session.ops) {
          if (op.op === 'flush') {
            await p.flush();
            continue;
          }
          const md = op.metadata_arg === 'json-text' ? (op.metadata_text as string) : new Metadata(parseJson(op.metadata_text as string));
          const data = (op.data_segments_b64 ?? []).map((s) => Buffer.from(s, 'base64'));
          const f = p.push(md, data, op.partition === null || op.partition === undefined ? {} : { partition: op.partition });
          if (op.rejected !== undefined) {
            await assert.rejects(f.wait(), (err: Error) => {
              if (op.rejected?.message.startsWith('Could not parse JSON')) return err.message.startsWith('Could not parse JSON');
              if (op.rejected?.message.startsWith('Metadata does not comply')) return err.message.startsWith('Metadata does not comply to required schema:\n');
              return err.message === op.rejected?.message;
            });
          } else {
            pending.push({ f, expected: BigInt(op.event_id as number), what: op.metadata_text as string });
          }
        }
        await p.close();
        for (const { f, expected, what } of pending) assert.equal(await f.wait(0), expected, `push ${what}`);
        await t.close();
      }
      await driver.close();

      // compare every file
      const dir = join(work, topic.name);
      // partition files are created lazily by the first writer (files-driver.md §3): a file the
      // reference created empty may be missing here, which readers treat as empty
      const ourFiles = listFiles(dir).filter((f) => f !== 'options.json');
      const expectedFiles = Object.entries(topic.files).filter(([f, info]) => info.size > 0 || ourFiles.includes(f)).map(([f]) => f);
      assert.deepEqual(ourFiles, expectedFiles.sort());
      for (const [name, content] of Object.entries(topic.component_files)) {
        assert.equal(fs.readFileSync(join(dir, name), 'utf8'), content, `${topic.name}/${name}`);
      }
      const exact = topic.events.every((e) => dumpCompact(parseJson(e.metadata_json)) === e.metadata_json);
      if (exact) {
        for (const [name, info] of Object.entries(topic.files)) {
          if (!ourFiles.includes(name)) continue;
          assert.equal(sha256(join(dir, name)), info.sha256, `${topic.name}/${name} is byte-identical`);
          assert.equal(fs.statSync(join(dir, name)).size, info.size);
        }
      } else {
        // rebuild the reference files with our canonical form of each record: must match exactly
        for (let p = 0; p < topic.num_partitions; p++) {
          const evs = topic.events.filter((e) => e.partition === p).sort((a, b) => a.event_id - b.event_id);
          const pdir = join(dir, 'partitions', String(p).padStart(8, '0'));
          const meta = fs.readFileSync(join(pdir, 'metadata'));
          const data = fs.readFileSync(join(pdir, 'data'));
          const index = fs.readFileSync(join(pdir, 'index'));
          assert.equal(index.length, evs.length * 32);
          let mo = 0;
          let doff = 0;
          for (const e of evs) {
            const ours = dumpCompact(parseJson(e.metadata_json));
            assert.ok(differsOnlyByIntegralDoubles(e.metadata_json, ours));
            const rec = record(ours);
            const r = e.event_id * 32;
            assert.equal(Number(index.readBigUInt64LE(r)), mo);
            assert.equal(Number(index.readBigUInt64LE(r + 8)), rec.length);
            assert.equal(Number(index.readBigUInt64LE(r + 16)), doff);
            assert.equal(Number(index.readBigUInt64LE(r + 24)), e.index_entry[3]);
            assert.deepEqual(meta.subarray(mo, mo + rec.length), rec);
            assert.equal(data.subarray(doff, doff + e.index_entry[3]).toString('base64'), e.data_b64);
            mo += rec.length;
            doff += e.index_entry[3];
          }
          assert.equal(meta.length, mo);
          assert.equal(data.length, doff);
          // the data file is byte-identical whatever the metadata
          assert.equal(sha256(join(pdir, 'data')), topic.files[`partitions/${String(p).padStart(8, '0')}/data`]?.sha256);
        }
      }
    });
  }
});
