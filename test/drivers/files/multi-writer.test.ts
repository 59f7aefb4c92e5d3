/**
 * Several producer processes appending to ONE partition with `use_file_locking: true`
 * (files-driver.md §9.1–9.2, §13.3): ids stay dense, records never overlap, every event's
 * metadata, data and headers are intact, and each process's events keep their push order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver } from '../../../src/index.js';
import { eventData, eventHeaders, type ProducerConfig } from './payload.js';
import { Child, account, readHeadersFile, readIndex, readTopic, rmDir, tempDir, u64 } from './mp-helpers.js';

const HEADERS_EVERY = 3;

async function runWriters(procs: number, perProc: number): Promise<void> {
  const root = tempDir('ds-multi-writer-');
  const children: Child[] = [];
  try {
    const d = await Driver.create('files', { root_path: root });
    await d.createTopic('mw');
    await d.close();

    for (let p = 0; p < procs; p++) {
      const cfg: ProducerConfig = {
        root,
        topic: 'mw',
        proc: p,
        start: 0,
        count: perProc,
        mode: 'multi',
        locking: true,
        headersEvery: HEADERS_EVERY,
        barrier: true,
      };
      children.push(new Child('producer', [JSON.stringify(cfg)]));
    }
    // start barrier: every child has its producer open before anyone pushes
    await Promise.all(children.map((c) => c.waitLine((l) => l === 'ready', 20_000)));
    for (const c of children) c.send('go');
    const exits = await Promise.all(children.map((c) => c.waitExit(40_000)));
    for (const [i, e] of exits.entries()) {
      assert.deepEqual(e, { code: 0, signal: null }, `child ${i} stderr: ${children[i]?.stderr}`);
      assert.ok(children[i]?.lines.includes('done'));
    }

    const total = procs * perProc;
    const { events, extra } = await readTopic(root, 'mw', total, { extraMs: 300 });
    assert.equal(extra, undefined, 'no event beyond the pushed ones');
    const expected = new Map<number, number[]>();
    for (let p = 0; p < procs; p++) expected.set(p, Array.from({ length: perProc }, (_, s) => s));
    const acc = account(events, expected);
    let switches = 0;
    for (let i = 1; i < events.length; i++) {
      if ((events[i]?.metadata as { proc: number }).proc !== (events[i - 1]?.metadata as { proc: number }).proc) switches++;
    }
    console.log(
      `multi-writer ${procs}×${perProc}: read ${events.length}, lost ${acc.lost}, duplicated ${acc.duplicated}, ` +
        `out of order ${acc.outOfOrder}, unexpected ${acc.unexpected}, process switches in id order ${switches}`,
    );
    assert.equal(events.length, total);
    assert.equal(acc.lost, 0, 'lost');
    assert.equal(acc.duplicated, 0, 'duplicated');
    assert.equal(acc.outOfOrder, 0, 'out of order');
    assert.equal(acc.unexpected, 0, 'unexpected');
    assert.ok(acc.denseIds, 'ids 0..n-1');

    // contents: data bytes and headers derived from (proc, seq)
    let withHeaders = 0;
    for (const e of events) {
      const { proc, seq } = e.metadata as { proc: number; seq: number };
      assert.deepEqual(e.metadata, { proc, seq });
      assert.ok(e.data.equals(eventData(proc, seq)), `data of event ${e.id} (${proc}/${seq})`);
      const h = eventHeaders(proc, seq, HEADERS_EVERY);
      assert.deepEqual(e.headers, h ?? {}, `headers of event ${e.id}`);
      if (h !== undefined) withHeaders++;
    }

    // raw files: index records describe disjoint extents that tile the files exactly
    const dir = join(root, 'mw', 'partitions', '00000000');
    const indexSize = fs.statSync(join(dir, 'index')).size;
    assert.equal(indexSize, total * 32, 'index size');
    const idx = readIndex(join(dir, 'index'));
    const meta = fs.readFileSync(join(dir, 'metadata'));
    const data = fs.readFileSync(join(dir, 'data'));
    const byMeta = [...idx.entries()].sort((a, b) => a[1].mo - b[1].mo);
    let end = 0;
    for (const [id, r] of byMeta) {
      assert.ok(r.mo >= end, `metadata extent of event ${id} overlaps the previous one`);
      assert.equal(r.mo, end, `gap in metadata before event ${id}`);
      end = r.mo + r.ms;
      assert.ok(end <= meta.length, `metadata extent of event ${id} beyond EOF`);
      // the record itself: u64 length + the event's canonical JSON
      assert.equal(u64(meta, r.mo), r.ms - 8);
      const md = JSON.parse(meta.toString('utf8', r.mo + 8, r.mo + r.ms)) as { proc: number; seq: number };
      assert.deepEqual(md, events[id]?.metadata, `raw metadata of event ${id}`);
    }
    assert.equal(end, meta.length, 'metadata file fully described');
    const byData = [...idx.entries()].filter(([, r]) => r.ds > 0).sort((a, b) => a[1].dof - b[1].dof);
    end = 0;
    for (const [id, r] of byData) {
      assert.ok(r.dof >= end, `data extent of event ${id} overlaps the previous one`);
      assert.equal(r.dof, end, `gap in data before event ${id}`);
      end = r.dof + r.ds;
      assert.ok(end <= data.length, `data extent of event ${id} beyond EOF`);
    }
    assert.equal(end, data.length, 'data file fully described');
    for (const r of idx) assert.ok(r.dof <= data.length);
    // metadata order = id order (one batch at a time under the lock)
    for (let i = 1; i < idx.length; i++) assert.ok((idx[i]?.mo as number) > (idx[i - 1]?.mo as number));

    // headers records: strictly increasing ids, offsets matching the index, contents matching the events
    const hf = readHeadersFile(join(dir, 'headers'));
    assert.equal(hf.tail, 0, 'no partial headers record');
    assert.equal(hf.records.length, withHeaders, 'one headers record per event with headers');
    let prev = -1;
    for (const rec of hf.records) {
      assert.ok(rec.id > prev, 'headers ids strictly increasing');
      prev = rec.id;
      assert.ok(rec.id < total);
      assert.equal(rec.mo, idx[rec.id]?.mo, `headers record of event ${rec.id} matches its index entry`);
      const { proc, seq } = events[rec.id]?.metadata as { proc: number; seq: number };
      assert.deepEqual(rec.headers, eventHeaders(proc, seq, HEADERS_EVERY));
    }
  } finally {
    for (const c of children) c.kill();
    rmDir(root);
  }
}

describe('files driver: several writer processes on one partition (use_file_locking)', () => {
  it('4 processes × 500 events: 2000 dense ids, intact events, disjoint extents', { timeout: 90_000 }, async () => {
    await runWriters(4, 500);
  });

  it('2 processes × 200 events (§13.3): 400 readable events, ids 0..399, no overlap', { timeout: 60_000 }, async () => {
    await runWriters(2, 200);
  });
});
