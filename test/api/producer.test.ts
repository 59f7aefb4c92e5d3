/**
 * The producer against a writer it cannot see through: how many appends of a partition it keeps in
 * flight (the writer's maxConcurrentAppends), their order, and sendNow when it waits.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, registerDriver } from '../../src/index.js';
import type { EventBatch, EventIds, TopicWriter } from '../../src/api/driver-spi.js';
import { createMemoryDriver } from '../../src/drivers/memory/driver.js';

/** A writer whose appends finish when the test says so; ids are assigned in call order. */
class HeldWriter implements TopicWriter {
  readonly calls: { partition: number; count: number; release: () => void }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  sendNowCalls = 0;
  private next = 0n;
  constructor(readonly maxConcurrentAppends: number | undefined) {}
  append(partition: number, batch: EventBatch): Promise<EventIds> {
    const first = this.next;
    this.next += BigInt(batch.count);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      this.calls.push({
        partition,
        count: batch.count,
        release: () => {
          this.inFlight--;
          resolve({ first });
        },
      });
    });
  }
  sendNow(): void {
    this.sendNowCalls++;
  }
  async sync(): Promise<void> {}
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
});
