/**
 * The producer against a writer it cannot see through: how many appends of a partition it keeps in
 * flight (the writer's maxConcurrentAppends), their order, and sendNow when it waits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, registerDriver } from '../../src/index.js';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';
import type { EventBatch, EventIds, TopicWriter } from '../../src/api/driver-spi.js';
import { createMemoryDriver } from '../../src/drivers/memory/driver.js';
import { Metadata } from '../../src/api/metadata.js';

/** A writer whose appends finish when the test says so; ids are assigned in call order. */
class HeldWriter implements TopicWriter {
  /** Appends (by call number) that fail when released. */
  readonly failing = new Set<number>();
  readonly calls: { partition: number; count: number; release: () => void }[] = [];
  readonly batches: EventBatch[] = [];
  inFlight = 0;
  maxInFlight = 0;
  sendNowCalls = 0;
  private next = 0n;
  constructor(readonly maxConcurrentAppends: number | undefined) {}
  append(partition: number, batch: EventBatch): Promise<EventIds> {
    const fails = this.failing.has(this.calls.length);
    this.batches.push(batch);
    const first = this.next;
    if (!fails) this.next += BigInt(batch.count);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve, reject) => {
      this.calls.push({
        partition,
        count: batch.count,
        release: () => {
          this.inFlight--;
          if (fails) reject(new Error('disk on fire'));
          else resolve({ first });
        },
      });
    });
  }
  sendNow(): void {
    this.sendNowCalls++;
  }
  /** sync() calls that fail (by call number, from 1). */
  readonly failingSyncs = new Set<number>();
  syncCalls = 0;
  async sync(): Promise<void> {
    if (this.failingSyncs.has(++this.syncCalls)) throw new Error('EIO: i/o error, fsync');
  }
  async close(): Promise<void> {}
}

let n = 0;
async function topicWith(writer: HeldWriter) {
  const type = `held-${++n}`;
  registerDriver(type, (o) => {
    const inner = createMemoryDriver(o);
    return {
      ...inner,
      createTopic: (a, b, c) => inner.createTopic(a, b, c),
      topicExists: (a) => inner.topicExists(a),
      listTopics: () => inner.listTopics(),
      deleteTopic: (a) => inner.deleteTopic(a),
      close: () => inner.close(),
      async openTopic(name) {
        const t = await inner.openTopic(name);
        if (t === undefined) return undefined;
        return {
          partitions: t.partitions,
          components: t.components,
          sourceId: t.sourceId,
          createWriter: async () => writer,
          createSource: (s) => t.createSource(s),
          close: () => t.close(),
        };
      },
    };
  });
  const d = await Driver.create(type, {});
  await d.createTopic('t', { options: {} });
  return { d, t: await d.openTopic('t') };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('producer and its writer', () => {
  for (const [allowed, expected] of [[undefined, 1], [1, 1], [3, 3]] as const) {
    it(`keeps ${expected} append(s) of a partition in flight when the writer takes ${allowed ?? 'the default'}; ids in push order`, { timeout: 10000 }, async () => {
      const w = new HeldWriter(allowed);
      const { d, t } = await topicWith(w);
      try {
        const p = await t.producer({ batchSize: 2, maxNumBatches: 8 });
        const futures = Array.from({ length: 12 }, (_, i) => p.push({ i }));
        await tick();
        // 6 closed batches of 2 events: only `expected` of them handed over so far
        assert.equal(w.calls.length, expected);
        // finish them in order as they come; queued batches merge into the next append
        for (let k = 0; k < w.calls.length; k++) {
          (w.calls[k] as { release: () => void }).release();
          await tick();
        }
        assert.equal(w.maxInFlight, expected);
        assert.deepEqual(await Promise.all(futures), Array.from({ length: 12 }, (_, i) => BigInt(i)));
        assert.equal(w.calls.reduce((s, c) => s + c.count, 0), 12);
        await p.close();
      } finally {
        await t.close();
        await d.close();
      }
    });
  }

  for (const ordering of ['strict', 'loose'] as const) {
    it(`a failed append: ${ordering === 'strict' ? 'what was pushed behind it and is not written yet fails too' : 'loose ordering writes what was pushed behind it'}; later pushes are written`, { timeout: 10000 }, async () => {
      const w = new HeldWriter(undefined);
      w.failing.add(0);
      const { d, t } = await topicWith(w);
      try {
        const p = await t.producer({ batchSize: 2, maxNumBatches: 8, ordering });
        const first = Array.from({ length: 7 }, (_, i) => p.push({ i }));
        await tick();
        // append 0 (events 0-1) in flight; events 2-5 queued in two batches, event 6 in the open batch
        assert.equal(w.calls.length, 1);
        let released = 0;
        const drain = async (): Promise<void> => {
          for (let k = 0; k < 10; k++, await tick()) while (released < w.calls.length) w.calls[released++]?.release();
        };
        await drain();
        const flushed = p.flush();
        await drain();
        await Promise.allSettled([flushed.wait(2000)]);
        const outcomes = await Promise.allSettled(first.map((f) => f.wait(2000)));
        const failed = outcomes.map((o) => o.status === 'rejected');
        if (ordering === 'strict') {
          assert.deepEqual(failed, [true, true, true, true, true, true, true]);
          assert.match(String((outcomes[2] as PromiseRejectedResult).reason), /Not written: an earlier batch of partition 0 failed \(disk on fire\)/);
          assert.equal(w.calls.length, 1, 'nothing behind the failed append was written');
        } else {
          assert.deepEqual(failed, [true, true, false, false, false, false, false]);
        }
        // pushes after the failure are written as usual
        const later = p.push({ i: 7 });
        const flushed2 = p.flush();
        await drain();
        await flushed2.wait(2000);
        assert.equal(typeof (await later.wait(2000)), 'bigint');
        assert.equal(p.hasCapacity(), true);
        await p.close();
      } finally {
        await t.close();
        await d.close();
      }
    });
  }

  it('haltOnFailure: after a failed append, pushes to that partition are rejected until resume()', { timeout: 10000 }, async () => {
    const w = new HeldWriter(undefined);
    w.failing.add(0);
    const { d, t } = await topicWith(w);
    try {
      const p = await t.producer({ batchSize: 2, maxNumBatches: 8, haltOnFailure: true });
      const first = [p.push({ i: 0 }, undefined, { partition: 0 }), p.push({ i: 1 }, undefined, { partition: 0 })];
      await tick();
      (w.calls[0] as { release: () => void }).release();
      await assert.rejects(first[0]!.wait(2000), /disk on fire/);
      // pushed after the failure, before the application re-sent anything: not written
      const late = p.push({ i: 2 }, undefined, { partition: 0 });
      await assert.rejects(late.wait(2000), /Not written: an earlier batch of partition 0 failed \(disk on fire\)/);
      assert.equal(w.calls.length, 1);
      p.resume();
      const again = [p.push({ i: 0 }, undefined, { partition: 0 }), p.push({ i: 1 }, undefined, { partition: 0 })];
      await tick();
      for (const c of w.calls.slice(1)) c.release();
      assert.deepEqual(await Promise.all(again.map((f) => f.wait(2000))), [0n, 1n]);
      await p.close();
    } finally {
      await t.close();
      await d.close();
    }
  });

  it('tells the writer to send now when it waits for capacity or flushes', { timeout: 10000 }, async () => {
    const w = new HeldWriter(5);
    const { d, t } = await topicWith(w);
    try {
      const p = await t.producer({ batchSize: 2, maxNumBatches: 2 });
      for (let i = 0; i < 4; i++) p.push({ i });
      await tick();
      assert.equal(p.hasCapacity(), false);
      assert.equal(w.sendNowCalls, 0);
      const ready = p.ready();
      assert.equal(w.sendNowCalls, 1, 'waiting for capacity');
      for (const c of w.calls) c.release();
      await ready;
      p.push({ i: 4 });
      const flushed = p.flush();
      await tick();
      assert.equal(w.sendNowCalls, 2, 'flush');
      for (const c of w.calls.slice(2)) c.release();
      await flushed;
      await p.close();
    } finally {
      await t.close();
      await d.close();
    }
  });

  it('a batch holds exactly one default record per event, in push order, whatever the mix of texts', { timeout: 10000 }, async () => {
    // records encoded from canonical texts (ASCII or not, small or growing the batch buffer) mixed with pass-through
    // records (stored ranges, written as borrowed ranges of their buffer)
    // two adjacent stored records: pushed with a text between them, they must not merge into one borrowed range
    const storedTexts = ['{"from":"storage"}', '{"from":"storage","n":2}'];
    const stored = Buffer.alloc(128);
    let at = 8;
    const fromStorage: Metadata[] = storedTexts.map((text) => {
      stored.writeUInt32LE(text.length, at);
      stored.write(text, at + 8);
      const md = Metadata.fromStoredRange(stored, at + 8, at + 8 + text.length);
      at += 8 + text.length;
      return md;
    });
    const [s1, s2] = fromStorage as [Metadata, Metadata];
    const big = { blob: 'x'.repeat(100_000) }; // beyond the batch buffer's first size: it grows
    const batches: (Metadata | object)[][] = [
      [{ a: 1 }, { b: 'two' }, Metadata.fromString('three'), [4]],
      [{ a: 1 }, { s: 'é' }, { c: 3 }],
      [{ s: '😀 emoji' }, { t: 'ü' }],
      [{ a: 1 }, s1, { b: 2 }, s2, s1, s2, { s: 'ß' }, big, { end: true }],
      [big, { s: 'é'.repeat(50_000) }, { a: 1 }],
    ];
    for (const events of batches) {
      const w = new HeldWriter(1);
      const { d, t } = await topicWith(w);
      try {
        const p = await t.producer({ batchSize: events.length, maxNumBatches: 4 });
        const futures = events.map((md) => p.push(md instanceof Metadata ? md : (md as never)));
        await tick();
        assert.equal(w.calls.length, 1, 'one batch of all the events');
        w.calls[0]?.release();
        await Promise.all(futures.map((f) => f.wait()));
        const batch = w.batches[0] as EventBatch;
        const expected: Buffer[] = [];
        const ends: number[] = [];
        let size = 0;
        for (const md of events) {
          const text = (md instanceof Metadata ? md : Metadata.from(md as never)).dump();
          // the default layout, built here independently: u64 LE byte length, then the UTF-8 text
          const body = Buffer.from(text, 'utf8');
          const rec = Buffer.alloc(8 + body.length);
          rec.writeUInt32LE(body.length, 0);
          body.copy(rec, 8);
          expected.push(rec);
          size += rec.length;
          ends.push(size);
        }
        assert.deepEqual(Buffer.concat(batch.metadata), Buffer.concat(expected));
        assert.equal(batch.metadataSize, size);
        assert.deepEqual(batch.metadataEnds, ends);
        await p.close();
      } finally {
        await t.close();
        await d.close();
      }
    }
  });

  it('a failed sync fails that flush and every later one (SYNC_FAILED), even when the next sync would succeed', { timeout: 10000 }, async () => {
    const w = new HeldWriter(1);
    w.failingSyncs.add(1);
    const { d, t } = await topicWith(w);
    try {
      const p = await t.producer({ batchSize: 1 });
      const f1 = p.push({ i: 1 });
      const flushed = p.flush();
      await tick();
      for (const c of w.calls) c.release();
      await f1.wait();
      await assert.rejects(flushed.wait(), (err: unknown) => err instanceof DiasporaError && err.code === ErrorCodes.SYNC_FAILED && /EIO: i\/o error, fsync/.test(err.message));
      // a retried fsync may report success for pages the kernel dropped: the producer does not take it
      const f2 = p.push({ i: 2 });
      const again = p.flush();
      await tick();
      for (const c of w.calls.slice(1)) c.release();
      await f2.wait();
      await assert.rejects(again.wait(), (err: unknown) => err instanceof DiasporaError && err.code === ErrorCodes.SYNC_FAILED);
      await assert.rejects(p.close(), (err: unknown) => err instanceof DiasporaError && err.code === ErrorCodes.SYNC_FAILED);
    } finally {
      await t.close();
      await d.close();
    }
  });
});
