/**
 * fsync points of the files writer for each `flush_behavior` (files-driver.md §9.3), observed from
 * inside the process: fs.fsync / fs.fsyncSync / fs.fdatasync / fs.fdatasyncSync and the positional
 * writes (fs.write / writeSync / writev / writevSync) are replaced by recording wrappers that call the
 * originals, and `syncBuiltinESMExports()` makes the library's `import * as fs` see them. Each
 * descriptor is mapped to its file through /proc/self/fd; only files of the topic directory count.
 *
 * - `immediate`: per batch, metadata and data (and headers when the batch has some) are fsynced —
 *   the fsyncs complete — before the index records are written, and the index is fsynced after that
 *   write, before the push futures resolve.
 * - `on_flush`: no fsync while pushing; `flush()` (and `close()`) fsyncs data, metadata, headers and
 *   index of every partition written, the index of each partition after its other files completed.
 * - `buffered` (the default): no fsync at all.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { Driver, type Json } from '../../../src/index.js';
import { rmDir, tempDir } from './mp-helpers.js';

const require = createRequire(import.meta.url);
const fsCjs = require('node:fs') as typeof import('node:fs');

type Op = 'write' | 'fsync' | 'fsync-done';
interface Rec {
  op: Op;
  /** `<partition dir>/<file>`, e.g. `00000001/index`. */
  file: string;
}

let topicRoot = '';
let recs: Rec[] = [];
const originals: Partial<Record<string, unknown>> = {};
const PATCHED = ['fsync', 'fsyncSync', 'fdatasync', 'fdatasyncSync', 'write', 'writeSync', 'writev', 'writevSync'] as const;

/** The file of `fd` relative to the partitions directory of the watched topic, or undefined. */
function fileOf(fd: unknown): string | undefined {
  if (typeof fd !== 'number' || topicRoot === '') return undefined;
  let p: string;
  try {
    p = fsCjs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
  const rel = relative(topicRoot, p);
  if (rel.startsWith('..') || !rel.startsWith('partitions/')) return undefined;
  return `${basename(dirname(p))}/${basename(p)}`;
}

function install(): void {
  const f = fsCjs as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of PATCHED) {
    const orig = f[name] as (...a: unknown[]) => unknown;
    originals[name] = orig;
    const isSync = name.endsWith('Sync');
    const isFsync = name.startsWith('fsync') || name.startsWith('fdatasync');
    f[name] = function (this: unknown, ...args: unknown[]): unknown {
      const file = fileOf(args[0]);
      if (file === undefined) return orig.apply(this, args);
      recs.push({ op: isFsync ? 'fsync' : 'write', file });
      if (isFsync && !isSync) {
        const cb = args[args.length - 1];
        if (typeof cb === 'function') {
          args[args.length - 1] = (...r: unknown[]): unknown => {
            recs.push({ op: 'fsync-done', file });
            return (cb as (...x: unknown[]) => unknown)(...r);
          };
        }
        return orig.apply(this, args);
      }
      const out = orig.apply(this, args);
      if (isFsync) recs.push({ op: 'fsync-done', file });
      return out;
    };
  }
  syncBuiltinESMExports();
}

function uninstall(): void {
  const f = fsCjs as unknown as Record<string, unknown>;
  for (const name of PATCHED) if (originals[name] !== undefined) f[name] = originals[name];
  syncBuiltinESMExports();
  topicRoot = '';
}

const part = (f: string): string => f.split('/')[0] as string;
const name = (f: string): string => f.split('/')[1] as string;
const fsyncs = (rs: Rec[]): Rec[] => rs.filter((r) => r.op === 'fsync' || r.op === 'fsync-done');

interface Ctx {
  root: string;
  driver: Driver;
}

async function open(flush: string | undefined): Promise<Ctx> {
  const root = tempDir('ds-flush-');
  const o: Record<string, Json> = { root_path: root };
  if (flush !== undefined) o['flush_behavior'] = flush;
  const driver = await Driver.create('files', o as Json);
  await driver.createTopic('t', { options: { num_partitions: 2 } });
  topicRoot = fsCjs.realpathSync(join(root, 't'));
  return { root, driver };
}

/**
 * Pushes `rounds` batches of 4 events to each of partitions 0 and 1, awaiting each round's futures
 * before the next (so every round is its own append). Round k ≥ 1 gives headers to one event; round
 * 0 has none (no headers file written then). Returns the producer (left open).
 */
async function pushRounds(h: Awaited<ReturnType<Driver['openTopic']>>, rounds: number) {
  const p = await h.producer({ batchSize: 4 });
  for (let k = 0; k < rounds; k++) {
    const futures = [];
    for (const partition of [0, 1]) {
      for (let i = 0; i < 4; i++) {
        const headers = k >= 1 && i === 2 ? { round: String(k) } : undefined;
        futures.push(p.push({ k, i, partition }, Buffer.from(`data-${k}-${i}-`.repeat(i + 1)), { partition, ...(headers ? { headers } : {}) }));
      }
    }
    for (const f of futures) await f.wait();
  }
  return p;
}

describe('files writer: fsync points per flush_behavior (files-driver.md §9.3)', { concurrency: 1 }, () => {
  let ctx: Ctx | undefined;
  beforeEach(() => {
    recs = [];
    install();
  });
  afterEach(async () => {
    uninstall();
    if (ctx !== undefined) {
      await ctx.driver.close().catch(() => undefined);
      rmDir(ctx.root);
      ctx = undefined;
    }
  });

  it('the recording wrappers see the library (sanity: writes are recorded)', async () => {
    ctx = await open(undefined);
    const h = await ctx.driver.openTopic('t');
    const p = await pushRounds(h, 1);
    await p.close();
    await h.close();
    const files = new Set(recs.filter((r) => r.op === 'write').map((r) => r.file));
    for (const f of ['00000000/metadata', '00000000/data', '00000000/index', '00000001/index']) assert.ok(files.has(f), `write to ${f} recorded: ${[...files].join(', ')}`);
  });

  it('immediate: per batch, metadata + data (+ headers) fsynced before the index write, index fsynced after it', async () => {
    ctx = await open('immediate');
    const h = await ctx.driver.openTopic('t');
    const p = await pushRounds(h, 3);
    const pushed = recs.slice();
    await p.flush();
    await p.close();
    await h.close();

    for (const P of ['00000000', '00000001']) {
      const mine = pushed.filter((r) => part(r.file) === P);
      const indexWrites = mine.map((r, i) => (r.op === 'write' && name(r.file) === 'index' ? i : -1)).filter((i) => i >= 0);
      assert.equal(indexWrites.length, 3, `partition ${P}: one index write per round\n${JSON.stringify(mine)}`);
      let segStart = 0;
      for (const [k, iw] of indexWrites.entries()) {
        // this batch: from the end of the previous batch (its index fsync) to this index write
        const before = mine.slice(segStart, iw);
        const wrote = new Set(before.filter((r) => r.op === 'write').map((r) => name(r.file)));
        assert.ok(wrote.has('metadata') && wrote.has('data'), `partition ${P} batch ${k}: metadata and data written before the index`);
        assert.equal(wrote.has('headers'), k >= 1, `partition ${P} batch ${k}: headers written iff the batch has headers`);
        const done = new Set(before.filter((r) => r.op === 'fsync-done').map((r) => name(r.file)));
        for (const f of wrote) assert.ok(done.has(f), `partition ${P} batch ${k}: fsync of ${f} completed before the index write\n${JSON.stringify(before)}`);
        assert.ok(!before.some((r) => r.op === 'fsync' && name(r.file) === 'index'), `partition ${P} batch ${k}: no index fsync between the previous batch and this index write`);
        // after the index write: an index fsync (completed) before anything else of the next batch is written
        const nextWrite = mine.findIndex((r, i) => i > iw && r.op === 'write');
        const after = mine.slice(iw + 1, nextWrite < 0 ? mine.length : nextWrite);
        assert.ok(
          after.some((r) => r.op === 'fsync' && name(r.file) === 'index') && after.some((r) => r.op === 'fsync-done' && name(r.file) === 'index'),
          `partition ${P} batch ${k}: index fsynced after the index write (before the push futures resolved)\n${JSON.stringify(after)}`,
        );
        // the next batch starts after this index fsync completed
        segStart = mine.findIndex((r, i) => i > iw && r.op === 'fsync-done' && name(r.file) === 'index') + 1;
      }
    }
  });

  it('on_flush: no fsync while pushing; flush() fsyncs every file of every written partition, the index last', async () => {
    ctx = await open('on_flush');
    const h = await ctx.driver.openTopic('t');
    const p = await pushRounds(h, 3);
    assert.ok(recs.some((r) => r.op === 'write' && name(r.file) === 'index'), 'the batches were written');
    assert.deepEqual(fsyncs(recs), [], 'no fsync during pushes');

    const mark = recs.length;
    await p.flush();
    const flushed = recs.slice(mark);
    checkPartitionSyncs(flushed, ['00000000', '00000001'], 'flush()');

    // close() behaves like flush(): a batch pushed to partition 1 only → its files are fsynced on close
    const mark2 = recs.length;
    const f = p.push({ last: true }, Buffer.from('last'), { partition: 1, headers: { last: 'yes' } });
    await f.wait();
    assert.deepEqual(fsyncs(recs.slice(mark2)), [], 'no fsync for the push itself');
    const mark3 = recs.length;
    await p.close();
    checkPartitionSyncs(recs.slice(mark3), ['00000001'], 'close()');
    await h.close();
  });

  it('buffered (the default): no fsync at all, neither per batch nor on flush() or close()', async () => {
    for (const flush of [undefined, 'buffered']) {
      if (ctx !== undefined) {
        await ctx.driver.close();
        rmDir(ctx.root);
      }
      recs = [];
      ctx = await open(flush);
      const h = await ctx.driver.openTopic('t');
      const p = await pushRounds(h, 3);
      await p.flush();
      await p.close();
      await h.close();
      assert.ok(recs.some((r) => r.op === 'write' && name(r.file) === 'index'), 'the batches were written');
      assert.deepEqual(fsyncs(recs), [], `flush_behavior ${flush ?? '(default)'}: no fsync`);
    }
  });
});

/**
 * The fsyncs of a flush: every partition in `parts` is fsynced; for each partition fsynced, data, metadata, headers and
 * index are, and the index fsync starts only after the other three completed.
 */
function checkPartitionSyncs(rs: Rec[], parts: string[], what: string): void {
  const s = fsyncs(rs);
  const synced = [...new Set(s.map((r) => part(r.file)))].sort();
  for (const P of parts) assert.ok(synced.includes(P), `${what}: written partition ${P} is fsynced\n${JSON.stringify(s)}`);
  for (const P of synced) {
    const mine = s.filter((r) => part(r.file) === P);
    const started = mine.filter((r) => r.op === 'fsync').map((r) => name(r.file));
    assert.deepEqual([...started].sort(), ['data', 'headers', 'index', 'metadata'], `${what}, partition ${P}: each file fsynced once\n${JSON.stringify(mine)}`);
    const indexStart = mine.findIndex((r) => r.op === 'fsync' && name(r.file) === 'index');
    const doneBefore = new Set(mine.slice(0, indexStart).filter((r) => r.op === 'fsync-done').map((r) => name(r.file)));
    assert.deepEqual([...doneBefore].sort(), ['data', 'headers', 'metadata'], `${what}, partition ${P}: index fsynced last\n${JSON.stringify(mine)}`);
    assert.equal(mine[mine.length - 1]?.op, 'fsync-done');
    assert.equal(name(mine[mine.length - 1]?.file as string), 'index');
  }
}
