/**
 * The generic consumer's read-ahead (src/api/consumer.ts): what it keeps in memory. A consumer slower than its
 * reads never empties its buffer, so delivered events must not stay referenced there; and the read-ahead is bounded
 * in bytes as well as in events.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Driver, type Event } from '../../src/index.js';
import { rmDir, tempDir } from '../drivers/files/mp-helpers.js';
import { unhandledRejectionsDuring } from '../helpers/unhandled.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const N = 30_000;

async function withTopic(type: string, fn: (d: Driver) => Promise<void>): Promise<void> {
  const root = type === 'files' ? tempDir('ds-consumer-') : undefined;
  const d = await Driver.create(type, root === undefined ? {} : { root_path: root });
  try {
    await fn(d);
  } finally {
    await d.close();
    if (root !== undefined) rmDir(root);
  }
}

for (const type of ['memory', 'files']) {
  describe(`consumer read-ahead (${type})`, () => {
    it(`a consumer slower than its reads does not keep the events it delivered (${N / 2} of ${N} events read)`, { timeout: 60_000 }, async () => {
      await withTopic(type, async (d) => {
        await d.createTopic('t');
        const h = await d.openTopic('t');
        const p = await h.producer();
        for (let i = 0; i < N; i++) void p.push({ i }, Buffer.alloc(64, i & 0xff));
        await p.close();
        const c = await h.consumer('', { startFrom: 'earliest' });
        const early: WeakRef<Event>[] = [];
        // half of the events: the buffer has not run dry at the end of the topic yet
        for (let i = 0; i < N / 2; i++) {
          const e = (await c.pull().wait(10_000)) as Event;
          assert.deepEqual(e.metadata.json, { i });
          if (i < 1000) early.push(new WeakRef(e));
          // slower than the reads: the buffer is refilled before it empties
          if (i % 5 === 0) await new Promise((r) => setImmediate(r));
        }
        gc();
        await new Promise((r) => setImmediate(r));
        gc();
        const alive = early.filter((w) => w.deref() !== undefined).length;
        assert.ok(alive < 100, `${alive} of the first 1000 delivered events are still referenced`);
        await c.close();
        await h.close();
      });
    });
  });
}

describe('consumer read-ahead in bytes (files)', () => {
  it('events of 1 MiB: a consumer that took one event reads ahead about 32 MiB, not the whole 160 MiB topic', { timeout: 60_000 }, async () => {
    await withTopic('files', async (d) => {
      await d.createTopic('big');
      const h = await d.openTopic('big');
      const p = await h.producer({ batchSize: 8 });
      const mib = Buffer.alloc(1 << 20, 7);
      for (let i = 0; i < 160; i++) void p.push({ i }, mib);
      await p.close();
      gc();
      const before = process.memoryUsage().arrayBuffers;
      const c = await h.consumer('', { startFrom: 'earliest' });
      const first = (await c.pull().wait(10_000)) as Event;
      assert.equal(first.data.size, 1 << 20);
      // let the read-ahead run until it stops by itself
      for (let k = 0; k < 20; k++) await new Promise((r) => setTimeout(r, 25));
      gc();
      const held = (process.memoryUsage().arrayBuffers - before) / (1 << 20);
      assert.ok(held < 80, `${held.toFixed(0)} MiB of event data held after one pull`);
      // and the rest still arrives, in order
      for (let i = 1; i < 160; i++) assert.deepEqual(((await c.pull().wait(10_000)) as Event).metadata.json, { i });
      await c.close();
      await h.close();
    });
  });
});

describe('consumer.process() with a thread pool', () => {
  it('a pool that refuses work (closed) rejects process() and leaves no unhandled rejection behind', { timeout: 10_000 }, async () => {
    const d = await Driver.create('memory');
    try {
      await d.createTopic('t');
      const t = await d.openTopic('t');
      const p = await t.producer();
      for (let i = 0; i < 3; i++) p.push({ i });
      await p.flush();
      const c = await t.consumer('', { startFrom: 'earliest' });
      const pool = d.makeThreadPool(2);
      await pool.close();
      let outcome: unknown;
      const unhandled = await unhandledRejectionsDuring(async () => {
        outcome = await c.process(() => undefined, { threadPool: pool, maxEvents: 3 }).then(
          () => 'resolved',
          (err: unknown) => err,
        );
      });
      assert.match(String(outcome), /ThreadPool is closed/);
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      await d.close();
    }
  });
});
