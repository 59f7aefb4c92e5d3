/**
 * Crash recovery of the files driver (files-driver.md §8.2, §11, §13.4): a producer process
 * killed at each fault point of the batch protocol leaves a partition that
 *   (a) readers read up to the last complete batch, without modifying any file, and
 *   (b) the next writer process repairs (torn index truncated, dangling entries dropped,
 *       headers trimmed) and extends with dense ids.
 * Plus hand-made damage: a torn index record and an index entry pointing beyond EOF.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../../src/index.js';
import { eventData, eventHeaders, type ProducerConfig } from './payload.js';
import {
  Child,
  account,
  fileSize,
  hashTree,
  readHeadersFile,
  readIndex,
  readTopic,
  rmDir,
  tempDir,
  type ReadEvent,
} from './mp-helpers.js';

const HEADERS_EVERY = 3;
const BATCH = 10;

function producerCfg(root: string, proc: number, count: number, headersEvery = HEADERS_EVERY): ProducerConfig {
  return { root, topic: 'cr', proc, start: 0, count, mode: 'batches', batch: BATCH, headersEvery, locking: true };
}

function checkEvents(events: ReadEvent[], from: number, proc: number, n: number, headersEvery = HEADERS_EVERY): void {
  for (let s = 0; s < n; s++) {
    const e = events[from + s] as ReadEvent;
    assert.ok(e !== undefined, `event ${from + s} missing`);
    assert.equal(e.id, from + s);
    assert.deepEqual(e.metadata, { proc, seq: s }, `metadata of event ${e.id}`);
    assert.ok(e.data.equals(eventData(proc, s)), `data of event ${e.id}`);
    assert.deepEqual(e.headers, eventHeaders(proc, s, headersEvery) ?? {}, `headers of event ${e.id}`);
  }
}

/** The partition is consistent: whole index records within the files, headers records matching. */
function checkPartitionConsistent(dir: string, count: number): void {
  assert.equal(fileSize(join(dir, 'index')), count * 32, 'index = whole records');
  const idx = readIndex(join(dir, 'index'));
  const ms = fileSize(join(dir, 'metadata'));
  const ds = fileSize(join(dir, 'data'));
  for (const r of idx) assert.ok(r.mo + r.ms <= ms && r.dof + r.ds <= ds, 'entry within the files');
  const h = readHeadersFile(join(dir, 'headers'));
  assert.equal(h.tail, 0, 'no partial headers record');
  let prev = -1;
  for (const rec of h.records) {
    assert.ok(rec.id > prev && rec.id < count, `headers record id ${rec.id} in range and increasing`);
    assert.equal(rec.mo, idx[rec.id]?.mo, `headers record ${rec.id} matches the index`);
    prev = rec.id;
  }
}

/** A writer process appending `count` events of process `proc` (no fault); returns its stderr. */
async function appendWithChild(root: string, proc: number, count: number, headersEvery = HEADERS_EVERY): Promise<string> {
  const w = new Child('producer', [JSON.stringify(producerCfg(root, proc, count, headersEvery))]);
  try {
    const ex = await w.waitExit(20_000);
    assert.deepEqual(ex, { code: 0, signal: null }, `writer stderr: ${w.stderr}`);
    assert.ok(w.lines.includes('done'));
    return w.stderr;
  } finally {
    w.kill();
  }
}

async function createTopic(root: string): Promise<void> {
  const d = await Driver.create('files', { root_path: root });
  await d.createTopic('cr');
  await d.close();
}

/** Pushes events of process 0 in this process (batches of `batch`). */
async function fillInProcess(root: string, n: number, headersEvery: number): Promise<void> {
  const d = await Driver.create('files', { root_path: root });
  const h = await d.openTopic('cr');
  const p = await h.producer({ batchSize: BATCH });
  for (let s = 0; s < n; s++) void p.push({ proc: 0, seq: s }, eventData(0, s), { headers: eventHeaders(0, s, headersEvery) });
  await p.close();
  await h.close();
  await d.close();
}

const crashSummary: string[] = [];

describe('files driver: producer killed at each fault point', { concurrency: 2 }, () => {
  const points = ['files.after_metadata', 'files.after_data', 'files.after_headers', 'files.mid_index'] as const;
  for (const point of points) {
    for (const n of [1, 3]) {
      it(`${point}:${n} — readers stop at the last complete batch, the next writer repairs and extends`, { timeout: 60_000 }, async () => {
        const root = tempDir('ds-crash-');
        const children: Child[] = [];
        try {
          await createTopic(root);
          const dir = join(root, 'cr', 'partitions', '00000000');
          const crasher = new Child('producer', [JSON.stringify(producerCfg(root, 0, 100))], {
            env: { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: `${point}:${n}` },
          });
          children.push(crasher);
          const ex = await crasher.waitExit(20_000);
          assert.equal(ex.signal, 'SIGKILL', `the producer killed itself (stderr: ${crasher.stderr})`);
          const completed = crasher.lines.filter((l) => l.startsWith('batch ')).length;
          assert.equal(completed, n - 1, 'batches completed before the fault');

          // state left by the crash
          const idxSize = fileSize(join(dir, 'index'));
          const metaSizeAfterCrash = fileSize(join(dir, 'metadata'));
          const headersAfterCrash = readHeadersFile(join(dir, 'headers'));
          const tornBytes = idxSize % 32;
          const danglingHeaders = headersAfterCrash.records.filter((r) => r.id >= completed * BATCH).length;
          if (point === 'files.mid_index') assert.equal(tornBytes, 16, 'half an index record');
          else assert.equal(tornBytes, 0);
          assert.equal(Math.floor(idxSize / 32), completed * BATCH, 'complete index records = complete batches');
          if (point === 'files.after_headers' || point === 'files.mid_index') assert.ok(danglingHeaders > 0, 'headers of the lost batch were written');
          else assert.equal(danglingHeaders, 0);

          // (a) a reader sees exactly the complete batches and modifies nothing
          const before = hashTree(root);
          const a = await readTopic(root, 'cr', completed * BATCH, { extraMs: 300 });
          assert.equal(a.events.length, completed * BATCH);
          assert.equal(a.extra, undefined, 'nothing beyond the complete batches');
          checkEvents(a.events, 0, 0, completed * BATCH);
          assert.deepEqual(hashTree(root), before, 'reading modified or created files');

          // (b) a new writer process recovers the tail and appends 10 events
          const stderr = await appendWithChild(root, 1, BATCH);
          const repaired = tornBytes > 0 || danglingHeaders > 0;
          if (repaired) assert.match(stderr, /Recovered partition/, 'one recovery warning');
          if (tornBytes > 0) assert.match(stderr, new RegExp(`removed ${tornBytes} torn index byte`));
          const total = completed * BATCH + BATCH;
          checkPartitionConsistent(dir, total);
          // orphan bytes of the lost batch stay; the new batch starts after them (§11.4)
          assert.equal(readIndex(join(dir, 'index'))[completed * BATCH]?.mo, metaSizeAfterCrash);

          const b = await readTopic(root, 'cr', total, { extraMs: 300 });
          assert.equal(b.extra, undefined);
          checkEvents(b.events, 0, 0, completed * BATCH);
          checkEvents(b.events, completed * BATCH, 1, BATCH);
          const expected = new Map<number, number[]>([
            [0, Array.from({ length: completed * BATCH }, (_, s) => s)],
            [1, Array.from({ length: BATCH }, (_, s) => s)],
          ]);
          const acc = account(b.events, expected);
          assert.deepEqual(acc, { lost: 0, duplicated: 0, outOfOrder: 0, denseIds: true, unexpected: 0 });
          crashSummary.push(
            `${point}:${n}: completed batches ${completed}, readable before repair ${a.events.length}, torn index bytes ${tornBytes}, ` +
              `dangling headers records ${danglingHeaders}, after repair ${b.events.length} (lost ${acc.lost}, duplicated ${acc.duplicated}, out of order ${acc.outOfOrder})`,
          );
        } finally {
          for (const c of children) c.kill();
          rmDir(root);
        }
      });
    }
  }

  after(() => {
    for (const l of crashSummary) console.log(l);
  });
});

describe('files driver: hand-made tail damage', () => {
  it('a torn index record is invisible to readers and truncated by the next writer', { timeout: 30_000 }, async () => {
    const root = tempDir('ds-torn-');
    try {
      await createTopic(root);
      await fillInProcess(root, 6, 1);
      const dir = join(root, 'cr', 'partitions', '00000000');
      const metaEnd = fileSize(join(dir, 'metadata'));
      fs.truncateSync(join(dir, 'index'), 5 * 32 + 13);

      const before = hashTree(root);
      const a = await readTopic(root, 'cr', 5, { extraMs: 300 });
      assert.equal(a.events.length, 5);
      assert.equal(a.extra, undefined, 'the torn record is invisible');
      checkEvents(a.events, 0, 0, 5, 1);
      assert.deepEqual(hashTree(root), before, 'readers never repair');

      const stderr = await appendWithChild(root, 1, BATCH, 2);
      assert.match(stderr, /Recovered partition .*removed 13 torn index byte\(s\), 0 index entries beyond end of file/);
      checkPartitionConsistent(dir, 15);
      assert.equal(readIndex(join(dir, 'index'))[5]?.mo, metaEnd, 'appended after the orphan record');
      const b = await readTopic(root, 'cr', 15, { extraMs: 300 });
      assert.equal(b.extra, undefined);
      checkEvents(b.events, 0, 0, 5, 1);
      checkEvents(b.events, 5, 1, BATCH, 2);
    } finally {
      rmDir(root);
    }
  });

  for (const which of ['metadata', 'data'] as const) {
    it(`an index entry whose ${which} points beyond EOF: readers wait, then report corruption without advancing; the writer repairs`, { timeout: 30_000 }, async () => {
      const root = tempDir('ds-beyond-');
      const d = await Driver.create('files', { root_path: root });
      try {
        await createTopic(root);
        await fillInProcess(root, 5, HEADERS_EVERY);
        const dir = join(root, 'cr', 'partitions', '00000000');
        const ms = fileSize(join(dir, 'metadata'));
        const ds = fileSize(join(dir, 'data'));
        const last = readIndex(join(dir, 'index'))[4];
        assert.ok(last !== undefined);
        const fake = Buffer.alloc(32);
        if (which === 'metadata') {
          fake.writeBigUInt64LE(BigInt(ms), 0);
          fake.writeBigUInt64LE(100n, 8);
          fake.writeBigUInt64LE(BigInt(ds), 16);
          fake.writeBigUInt64LE(0n, 24);
        } else {
          // a valid metadata record, data beyond the end
          fake.writeBigUInt64LE(BigInt(last.mo), 0);
          fake.writeBigUInt64LE(BigInt(last.ms), 8);
          fake.writeBigUInt64LE(BigInt(ds), 16);
          fake.writeBigUInt64LE(50n, 24);
        }
        fs.appendFileSync(join(dir, 'index'), fake);
        const before = hashTree(root);

        const h = await d.openTopic('cr');
        const c = await h.consumer('', { startFrom: 'earliest' });
        for (let i = 0; i < 5; i++) {
          const e = await c.pull().wait(5000);
          assert.equal(e?.id, BigInt(i));
        }
        const t0 = performance.now();
        await assert.rejects(c.pull().wait(8000), (err: Error) => {
          // the event and the partition are named (they were not)
          assert.equal(err.message, `Corrupted ${which} index: entry points beyond end of file (event 5 of partition 0, ${dir})`);
          return true;
        });
        const waited = performance.now() - t0;
        console.log(`entry beyond EOF (${which}): corruption reported after ${waited.toFixed(0)} ms`);
        assert.ok(waited >= 1500 && waited < 7000, `reported after ~2 s (took ${waited.toFixed(0)} ms)`);
        // not advanced: the next pull still finds nothing readable
        assert.equal(await c.pull().wait(300), undefined);
        assert.deepEqual(hashTree(root), before, 'readers never repair');

        // a writer process drops the dangling entry and appends; the same consumer continues at id 5
        const stderr = await appendWithChild(root, 1, BATCH);
        assert.match(stderr, /Recovered partition .*removed 0 torn index byte\(s\), 1 index entry beyond end of file/);
        checkPartitionConsistent(dir, 15);
        const got: ReadEvent[] = [];
        for (let i = 0; i < BATCH; i++) {
          const e = await c.pull().wait(5000);
          assert.ok(e !== undefined, `event ${5 + i} after repair`);
          got.push({ partition: 0, id: Number(e.id), metadata: e.metadata.json, data: Buffer.from(e.data.toBuffer()), headers: { ...e.headers } });
        }
        assert.deepEqual(got.map((e) => e.id), Array.from({ length: BATCH }, (_, i) => 5 + i));
        for (const [s, e] of got.entries()) {
          assert.deepEqual(e.metadata, { proc: 1, seq: s });
          assert.ok(e.data.equals(eventData(1, s)));
          assert.deepEqual(e.headers, eventHeaders(1, s, HEADERS_EVERY) ?? {});
        }
        assert.equal(await c.pull().wait(200), undefined);
        await c.close();
        await h.close();
      } finally {
        await d.close();
        rmDir(root);
      }
    });
  }
});

describe('files driver: a live reader across a crash and repair', () => {
  it('a reader that already read the headers records of the crashed batch gets the headers of the events appended after the repair', { timeout: 40_000 }, async () => {
    const root = tempDir('ds-live-headers-');
    const children: Child[] = [];
    const d = await Driver.create('files', { root_path: root });
    try {
      await createTopic(root);
      // 2 complete batches, then a batch killed after its headers records were written
      const crasher = new Child('producer', [JSON.stringify(producerCfg(root, 0, 100))], {
        env: { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: 'files.after_headers:3' },
      });
      children.push(crasher);
      assert.equal((await crasher.waitExit(20_000)).signal, 'SIGKILL');
      const dir = join(root, 'cr', 'partitions', '00000000');
      const stale = readHeadersFile(join(dir, 'headers')).records.filter((r) => r.id >= 20);
      assert.ok(stale.length > 0, 'the crashed batch left headers records');

      // the reader reads the 20 complete events (and, with them, the whole headers file)
      const h = await d.openTopic('cr');
      const c = await h.consumer('', { startFrom: 'earliest' });
      const first: ReadEvent[] = [];
      for (let i = 0; i < 20; i++) {
        const e = await c.pull().wait(5000);
        assert.ok(e !== undefined);
        first.push({ partition: 0, id: Number(e.id), metadata: e.metadata.json, data: Buffer.from(e.data.toBuffer()), headers: { ...e.headers } });
      }
      checkEvents(first, 0, 0, 20);

      // a writer process repairs (truncates the stale headers records) and appends 30 events
      await appendWithChild(root, 1, 30);
      checkPartitionConsistent(dir, 50);
      const fresh = await readTopic(root, 'cr', 50);
      checkEvents(fresh.events, 20, 1, 30); // a new reader sees the right headers

      // the live reader must see them too
      const next: ReadEvent[] = [...first];
      for (let i = 0; i < 30; i++) {
        const e = await c.pull().wait(5000);
        assert.ok(e !== undefined);
        next.push({ partition: 0, id: Number(e.id), metadata: e.metadata.json, data: Buffer.from(e.data.toBuffer()), headers: { ...e.headers } });
      }
      const missing = next.slice(20).filter((e) => {
        const want = eventHeaders(1, (e.metadata as { seq: number }).seq, HEADERS_EVERY) ?? {};
        return JSON.stringify(e.headers) !== JSON.stringify(want);
      });
      console.log(`live reader across repair: ${missing.length} of 30 events with wrong/missing headers`);
      checkEvents(next, 20, 1, 30);
      await c.close();
      await h.close();
    } finally {
      for (const ch of children) ch.kill();
      await d.close();
      rmDir(root);
    }
  });

  it('a reader that read a stale headers record gets the record a repairing writer rewrote with the same size', { timeout: 40_000 }, async () => {
    const root = tempDir('ds-same-size-headers-');
    const children: Child[] = [];
    const d = await Driver.create('files', { root_path: root });
    try {
      await createTopic(root);
      // one event per batch, each with headers; killed in the 4th batch after its headers record (id 3)
      const crasher = new Child('producer', [JSON.stringify({ ...producerCfg(root, 0, 5, 1), batch: 1 })], {
        env: { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: 'files.after_headers:4' },
      });
      children.push(crasher);
      assert.equal((await crasher.waitExit(20_000)).signal, 'SIGKILL');
      const headersPath = join(root, 'cr', 'partitions', '00000000', 'headers');
      const sizeAfterCrash = fileSize(headersPath);

      // the live reader reads ids 0..2 (and with them the whole headers file, stale record of id 3 included)
      const h = await d.openTopic('cr');
      const c = await h.consumer('', { startFrom: 'earliest' });
      const got: ReadEvent[] = [];
      const pull = async (): Promise<void> => {
        const e = await c.pull().wait(5000);
        assert.ok(e !== undefined);
        got.push({ partition: 0, id: Number(e.id), metadata: e.metadata.json, data: Buffer.from(e.data.toBuffer()), headers: { ...e.headers } });
      };
      for (let i = 0; i < 3; i++) await pull();
      checkEvents(got, 0, 0, 3, 1);

      // a writer process cuts the stale record and writes id 3 with a headers record of the same size
      await appendWithChild(root, 1, 1, 1);
      assert.equal(fileSize(headersPath), sizeAfterCrash, 'the rewritten record has the same size');
      await pull();
      checkEvents(got, 3, 1, 1, 1);
      await c.close();
      await h.close();
    } finally {
      for (const ch of children) ch.kill();
      await d.close();
      rmDir(root);
    }
  });
});

describe('files driver: a long-lived writer while another writer process crashes', () => {
  it('headers of the long-lived writer survive the crash of another writer and a later recovery', { timeout: 40_000 }, async () => {
    const root = tempDir('ds-longlived-');
    const children: Child[] = [];
    const d = await Driver.create('files', { root_path: root });
    try {
      await createTopic(root);
      const dir = join(root, 'cr', 'partitions', '00000000');
      const h = await d.openTopic('cr');
      const p = await h.producer({ batchSize: BATCH });
      const pushBatch = async (proc: number, from: number): Promise<void> => {
        for (let s = from; s < from + BATCH; s++) void p.push({ proc, seq: s }, eventData(proc, s), { headers: eventHeaders(proc, s, 1) });
        await p.flush();
      };
      // A (this process) writes ids 0..9 (its first batch runs its tail recovery)
      await pushBatch(2, 0);
      // C crashes after writing the headers of its first batch (ids 10..19, never indexed)
      const crasher = new Child('producer', [JSON.stringify(producerCfg(root, 0, 100, 1))], {
        env: { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: 'files.after_headers:1' },
      });
      children.push(crasher);
      assert.equal((await crasher.waitExit(20_000)).signal, 'SIGKILL');
      // A keeps writing: ids 10..19
      await pushBatch(2, BATCH);
      await p.close();
      await h.close();

      const r1 = await readTopic(root, 'cr', 20, { extraMs: 200 });
      checkEvents(r1.events, 0, 2, 20, 1);
      const hf = readHeadersFile(join(dir, 'headers'));
      const ids = hf.records.map((r) => r.id);
      console.log(`headers record ids after A's second batch: ${ids.join(',')}`);

      // B, a new writer process, recovers and appends ids 20..29
      const stderr = await appendWithChild(root, 1, BATCH, 1);
      console.log(`recovery by B: ${stderr.trim()}`);
      const r2 = await readTopic(root, 'cr', 30, { extraMs: 200 });
      const lost = r2.events.slice(0, 20).filter((e) => Object.keys(e.headers).length === 0).length;
      console.log(`events of A without their headers after B's recovery: ${lost} of 20`);
      checkEvents(r2.events, 0, 2, 20, 1);
      checkEvents(r2.events, 20, 1, BATCH, 1);
      checkPartitionConsistent(dir, 30);
    } finally {
      for (const ch of children) ch.kill();
      await d.close();
      rmDir(root);
    }
  });

  it('an event without headers written after another writer crashed past its headers records does not get them', { timeout: 40_000 }, async () => {
    const root = tempDir('ds-stale-headers-');
    const children: Child[] = [];
    const d = await Driver.create('files', { root_path: root });
    try {
      await createTopic(root);
      const dir = join(root, 'cr', 'partitions', '00000000');
      const h = await d.openTopic('cr');
      const p = await h.producer({ batchSize: BATCH });
      const pushBatch = async (from: number): Promise<void> => {
        for (let s = from; s < from + BATCH; s++) void p.push({ proc: 2, seq: s }, eventData(2, s));
        await p.flush();
      };
      // A (this process, no headers) writes ids 0..9; C crashes after the headers records of ids 10..19
      await pushBatch(0);
      const crasher = new Child('producer', [JSON.stringify(producerCfg(root, 0, 100, 1))], {
        env: { DIASPORA_FAULT_INJECTION: '1', DIASPORA_FAULT: 'files.after_headers:1' },
      });
      children.push(crasher);
      assert.equal((await crasher.waitExit(20_000)).signal, 'SIGKILL');
      assert.ok(readHeadersFile(join(dir, 'headers')).records.some((r) => r.id === BATCH), 'the crashed batch left a record for id 10');
      // A writes ids 10..19, still without headers: they must not get C's
      await pushBatch(BATCH);
      await p.close();
      await h.close();

      const r = await readTopic(root, 'cr', 2 * BATCH, { extraMs: 200 });
      checkEvents(r.events, 0, 2, 2 * BATCH, 0);
      checkPartitionConsistent(dir, 2 * BATCH);
    } finally {
      for (const ch of children) ch.kill();
      await d.close();
      rmDir(root);
    }
  });
});
