/**
 * Fault test: the broker crashes (kill -9) and restarts on the same data while a producer pushes.
 * The producer retries the batches in flight with the same producer id and sequences, so the
 * broker de-duplicates whatever it had already appended: every push must succeed, and reading the
 * topic back must give 0 lost, 0 duplicated, 0 out of order, each event at the offset its push
 * future returned.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, type Event, type EventID, type Future } from '../../../src/index.js';
import { kafkaSuite, OwnBroker, uniqueName } from '../../helpers/kafka.js';

const N = 6000;
const PARTITIONS = 2;

kafkaSuite('kafka producer across a broker crash and restart', () => {
  const own = new OwnBroker();
  let started = false;

  before(() => {
    started = own.start();
  });

  after(() => own.stop());

  it(`pushes ${N} events while the broker is killed (-9) and restarted: 0 lost, 0 duplicated, 0 out of order`, { timeout: 240_000 }, async () => {
    assert.ok(started, own.error);
    const name = uniqueName('restart');
    const d = await Driver.create('kafka', { kafka: { 'bootstrap.servers': own.bootstrap } });
    try {
      await d.createTopic(name, { options: { num_partitions: PARTITIONS } });
      const t = await d.openTopic(name);
      const p = await t.producer({ batchSize: 50 });
      const futures: { partition: number; seq: number; id: Future<EventID> }[] = [];
      let restart: Promise<{ code: number | null; stderr: string }> | undefined;
      for (let seq = 0; seq < N; seq++) {
        const partition = seq % PARTITIONS;
        futures.push({ partition, seq, id: p.push({ seq }, undefined, { partition }) });
        if (seq === N / 3) {
          // let some batches reach the broker, then crash it while the pushes go on
          await p.flush();
          restart = own.restart(true);
        }
        if (seq % 500 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      await p.flush();
      const ids = await Promise.all(futures.map((f) => f.id));
      const r = await (restart as Promise<{ code: number | null; stderr: string }>);
      assert.equal(r.code, 0, `scripts/kafka.sh restart --kill failed:\n${r.stderr}`);
      await p.close();

      // read everything back
      const c = await t.consumer('');
      const seen = new Map<number, { partition: number; id: bigint }[]>();
      const lastSeq = new Map<number, number>();
      let outOfOrder = 0;
      let total = 0;
      try {
        const deadline = Date.now() + 60_000;
        while (total < N && Date.now() < deadline) {
          const e = (await c.pull().wait(2000)) as Event | undefined;
          if (e === undefined) continue;
          total++;
          const seq = (e.metadata.json as { seq: number }).seq;
          const list = seen.get(seq) ?? [];
          list.push({ partition: e.partitionIndex, id: e.id });
          seen.set(seq, list);
          if ((lastSeq.get(e.partitionIndex) ?? -1) > seq) outOfOrder++;
          lastSeq.set(e.partitionIndex, seq);
        }
        // nothing more than N (duplicates would show here)
        const extra = await c.pull().wait(1500);
        if (extra !== undefined) total++;
      } finally {
        await c.close();
      }
      let lost = 0;
      let duplicated = 0;
      let misplaced = 0;
      for (const f of futures) {
        const got = seen.get(f.seq) ?? [];
        if (got.length === 0) lost++;
        duplicated += Math.max(0, got.length - 1);
        const at = got[0];
        if (at !== undefined && (at.partition !== f.partition || at.id !== ids[f.seq])) misplaced++;
      }
      assert.deepEqual({ lost, duplicated, outOfOrder, misplaced, total }, { lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0, total: N });
    } finally {
      await d.close();
    }
  });
});
