/**
 * Where a files writer appends (writer.ts, writeLocked): it reuses the metadata and data ends of
 * its own last append only while the index ends where that append left it. Two driver instances
 * stand for two writer processes (each has its own partition state); bytes appended by hand stand
 * for a writer that crashed before writing its index entries.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../../src/index.js';
import { readIndex, readTopic, rmDir, tempDir } from './mp-helpers.js';

async function pushEvents(d: Driver, writer: string, from: number, n: number): Promise<void> {
  const h = await d.openTopic('t');
  const p = await h.producer({ batchSize: n });
  for (let i = from; i < from + n; i++) void p.push({ writer, i }, Buffer.from(`${writer}-data-${i}-`.repeat(1 + (i % 3))));
  await p.flush();
  await p.close();
  await h.close();
}

/** Reads the topic back: exactly `expected` (metadata and data of each push, in this order), ids 0.., nothing more. */
async function checkReadBack(root: string, expected: { writer: string; i: number }[]): Promise<void> {
  const { events, extra } = await readTopic(root, 't', expected.length, { extraMs: 100 });
  assert.equal(extra, undefined);
  assert.deepEqual(
    events.map((e) => e.metadata),
    expected,
  );
  for (const [k, e] of events.entries()) {
    const { writer, i } = expected[k] as { writer: string; i: number };
    assert.equal(e.id, k);
    assert.equal(e.data.toString(), `${writer}-data-${i}-`.repeat(1 + (i % 3)), `data of event ${k}`);
  }
}

describe('files writer: file ends across appends', () => {
  it('appends by another writer between two of ours: nothing is overwritten, extents are disjoint', async () => {
    const root = tempDir('ds-writer-ends-');
    const a = await Driver.create('files', { root_path: root });
    const b = await Driver.create('files', { root_path: root });
    try {
      await a.createTopic('t');
      const plan: [Driver, string, number, number][] = [
        [a, 'a', 0, 3],
        [b, 'b', 0, 2],
        [a, 'a', 3, 3],
        [a, 'a', 6, 2],
        [b, 'b', 2, 4],
        [a, 'a', 8, 1],
      ];
      const expected: { writer: string; i: number }[] = [];
      for (const [d, w, from, n] of plan) {
        await pushEvents(d, w, from, n);
        for (let i = from; i < from + n; i++) expected.push({ writer: w, i });
      }
      await checkReadBack(root, expected);
      const dir = join(root, 't', 'partitions', '00000000');
      const idx = readIndex(join(dir, 'index'));
      for (let k = 1; k < idx.length; k++) {
        const p = idx[k - 1] as (typeof idx)[number];
        const q = idx[k] as (typeof idx)[number];
        assert.ok(q.mo >= p.mo + p.ms, `metadata of ${k} after that of ${k - 1}`);
        assert.ok(q.dof >= p.dof + p.ds, `data of ${k} after that of ${k - 1}`);
      }
    } finally {
      await a.close();
      await b.close();
      rmDir(root);
    }
  });

  it('orphan bytes of a crashed writer: our next append and a new writer both write readable events', async () => {
    const root = tempDir('ds-writer-ends-');
    const a = await Driver.create('files', { root_path: root });
    try {
      await a.createTopic('t');
      await pushEvents(a, 'a', 0, 4);
      // a writer that crashed after its metadata and data writes, before its index entries
      const dir = join(root, 't', 'partitions', '00000000');
      fs.appendFileSync(join(dir, 'metadata'), Buffer.alloc(300, 0x7b));
      fs.appendFileSync(join(dir, 'data'), Buffer.alloc(5000, 0x55));
      await pushEvents(a, 'a', 4, 3);
      const c = await Driver.create('files', { root_path: root });
      try {
        await pushEvents(c, 'c', 0, 2);
      } finally {
        await c.close();
      }
      await pushEvents(a, 'a', 7, 2);
      const expected = [0, 1, 2, 3, 4, 5, 6].map((i) => ({ writer: 'a', i })).concat([0, 1].map((i) => ({ writer: 'c', i })), [7, 8].map((i) => ({ writer: 'a', i })));
      await checkReadBack(root, expected);
    } finally {
      await a.close();
      rmDir(root);
    }
  });
});

describe('files writer: a topic deleted under a running producer', () => {
  it('pushes after the topic directory was removed reject with a clear error instead of going to unlinked files', { timeout: 10_000 }, async () => {
    const root = tempDir('ds-writer-deleted-');
    const d = await Driver.create('files', { root_path: root });
    try {
      await d.createTopic('t');
      const h = await d.openTopic('t');
      const p = await h.producer({ batchSize: 1 });
      assert.equal(await p.push({ i: 0 }).wait(5000), 0n);
      fs.rmSync(join(root, 't'), { recursive: true, force: true });
      await assert.rejects(p.push({ i: 1 }).wait(5000), (err: Error) => {
        assert.match(err.message, /^Partition .*t[/\\]partitions[/\\]00000000 was deleted: the topic no longer exists$/);
        return true;
      });
      await p.close().catch(() => undefined);
    } finally {
      await d.close().catch(() => undefined);
      rmDir(root);
    }
  });
});
