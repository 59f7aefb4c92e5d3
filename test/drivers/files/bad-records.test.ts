/**
 * One bad event does not hold back the others (api.md §9, files-driver.md §8.3): with a zero-filled index record (an
 * OS crash can leave one), a corrupt metadata length prefix, or a data selector or allocator that throws for one
 * event, every event before it is delivered, then the pull that reaches it rejects without advancing (CORRUPTED for
 * bad records), and the events of other partitions keep coming. The same for stored runs (forwarding's reads).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { Driver, ErrorCodes, type Consumer, type ConsumerOptions, type DiasporaError } from '../../../src/index.js';
import type { ConsumerImpl } from '../../../src/api/consumer.js';
import { rmDir, tempDir } from './mp-helpers.js';

type Damage = 'zero-index' | 'length-prefix';

function partDir(root: string, p: number): string {
  return join(root, 't', 'partitions', String(p).padStart(8, '0'));
}

/** Topic `t` with `perPartition[p]` events `{p, i}` (data `d<p>-<i>`) in each partition. */
async function fill(d: Driver, perPartition: number[]): Promise<void> {
  await d.createTopic('t', { options: { num_partitions: perPartition.length } });
  const h = await d.openTopic('t');
  const p = await h.producer();
  for (const [part, n] of perPartition.entries()) for (let i = 0; i < n; i++) void p.push({ p: part, i }, Buffer.from(`d${part}-${i}`), { partition: part });
  await p.close();
  await h.close();
}

/** Zero-fills one more index record (size grown, block never written), or flips the length prefix of event `at`. */
function damage(root: string, part: number, how: Damage, at = 0): void {
  const dir = partDir(root, part);
  if (how === 'zero-index') {
    fs.appendFileSync(join(dir, 'index'), Buffer.alloc(32));
    return;
  }
  const mo = Number(fs.readFileSync(join(dir, 'index')).readBigUInt64LE(at * 32));
  const fd = fs.openSync(join(dir, 'metadata'), 'r+');
  try {
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, mo + 7);
  } finally {
    fs.closeSync(fd);
  }
}

/** Pulls until a pull rejects or times out; returns "p:i" of the events and the error. */
async function pullUntilError(c: Consumer, max: number): Promise<{ got: string[]; err: unknown }> {
  const got: string[] = [];
  for (let k = 0; k < max; k++) {
    try {
      const e = await c.pull().wait(2000);
      if (e === undefined) return { got, err: undefined };
      const md = e.metadata.json as { p: number; i: number };
      assert.equal(Number(e.id), md.i, 'id of the event');
      assert.equal(Buffer.from(e.data.toBuffer()).toString(), `d${md.p}-${md.i}`);
      got.push(`${md.p}:${md.i}`);
    } catch (err) {
      return { got, err };
    }
  }
  return { got, err: undefined };
}

function range(p: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${p}:${i}`);
}

async function withTopic(perPartition: number[], fn: (d: Driver, root: string) => Promise<void>): Promise<void> {
  const root = tempDir('ds-bad-records-');
  const d = await Driver.create('files', { root_path: root });
  try {
    await fill(d, perPartition);
    await fn(d, root);
  } finally {
    await d.close();
    rmDir(root);
  }
}

function isCorrupted(err: unknown): boolean {
  return (err as DiasporaError | undefined)?.code === ErrorCodes.CORRUPTED;
}

/** A custom allocator: the selective read path (allocated memory, scatter reads) instead of the bulk one. */
const copyAllocator: ConsumerOptions['dataAllocator'] = (_md, s) => Buffer.alloc(s.size);

describe('files driver: a bad event does not hold back the events before it, nor other partitions', () => {
  for (const how of ['zero-index', 'length-prefix'] as const) {
    for (const path of ['bulk', 'allocator'] as const) {
      it(`${how} (${path} reads): the events before it are delivered, then pulls reject with CORRUPTED without advancing`, { timeout: 30_000 }, async () => {
        await withTopic([20], async (d, root) => {
          damage(root, 0, how, 15);
          const good = how === 'zero-index' ? 20 : 15;
          const h = await d.openTopic('t');
          const c = await h.consumer('', { startFrom: 'earliest', dataAllocator: path === 'allocator' ? copyAllocator : undefined });
          try {
            const { got, err } = await pullUntilError(c, 30);
            assert.deepEqual(got, range(0, good));
            assert.ok(isCorrupted(err), `CORRUPTED, got ${String(err)}`);
            assert.match((err as Error).message, new RegExp(`Corrupted metadata record of event ${good} in partition 0`));
            // not advanced: the next pull reaches the same event
            await assert.rejects(c.pull().wait(2000), (e: unknown) => isCorrupted(e));
          } finally {
            await c.close();
            await h.close();
          }
        });
      });
    }
  }

  it('a zero-filled index record at the tail of partition 1 does not hold back partition 0', { timeout: 30_000 }, async () => {
    await withTopic([5, 5], async (d, root) => {
      damage(root, 1, 'zero-index');
      const h = await d.openTopic('t');
      const c = await h.consumer('', { startFrom: 'earliest' });
      try {
        const { got, err } = await pullUntilError(c, 30);
        assert.deepEqual([...got].sort(), [...range(0, 5), ...range(1, 5)].sort());
        assert.ok(isCorrupted(err), `CORRUPTED, got ${String(err)}`);
      } finally {
        await c.close();
        await h.close();
      }
    });
  });

  it('a corrupt record in partition 1 does not hold back the events of partition 0 after it', { timeout: 30_000 }, async () => {
    await withTopic([30, 5], async (d, root) => {
      damage(root, 1, 'length-prefix', 2);
      const h = await d.openTopic('t');
      const c = await h.consumer('', { startFrom: 'earliest' });
      try {
        const got: string[] = [];
        let errors = 0;
        for (let k = 0; k < 60 && got.length < 32; k++) {
          const r = await pullUntilError(c, 40);
          got.push(...r.got);
          if (r.err === undefined) break;
          assert.ok(isCorrupted(r.err), `CORRUPTED, got ${String(r.err)}`);
          errors++;
        }
        assert.deepEqual([...got].sort(), [...range(0, 30), ...range(1, 2)].sort(), 'every intact event, once');
        assert.ok(errors > 0, 'the bad record was reported');
      } finally {
        await c.close();
        await h.close();
      }
    });
  });

  for (const what of ['selector', 'allocator'] as const) {
    it(`a data ${what} that throws for one event: the events before it and other partitions' events are delivered, then its error`, { timeout: 30_000 }, async () => {
      await withTopic([5, 5], async (d) => {
        const bad = (md: { json: unknown }): boolean => {
          const j = md.json as { p: number; i: number };
          return j.p === 1 && j.i === 3;
        };
        const fail = (): never => {
          throw new Error(`${what} fails`);
        };
        const o: ConsumerOptions =
          what === 'selector' ? { dataSelector: (md, full) => (bad(md) ? fail() : full) } : { dataAllocator: (md, s) => (bad(md) ? fail() : Buffer.alloc(s.size)) };
        const h = await d.openTopic('t');
        const c = await h.consumer('', { startFrom: 'earliest', ...o });
        try {
          const got: string[] = [];
          let r = await pullUntilError(c, 30);
          got.push(...r.got);
          // partition 0's events may still be ahead when the error comes
          if (got.length < 8) {
            assert.match(String((r.err as Error | undefined)?.message), new RegExp(`${what} fails`));
            r = await pullUntilError(c, 30);
            got.push(...r.got);
          }
          assert.deepEqual([...got].sort(), [...range(0, 5), ...range(1, 3)].sort());
          assert.match(String((r.err as Error | undefined)?.message), new RegExp(`${what} fails`));
        } finally {
          await c.close();
          await h.close();
        }
      });
    });
  }

  it('stored runs (forwarding) stop before a corrupt record, then report it without advancing', { timeout: 30_000 }, async () => {
    await withTopic([20], async (d, root) => {
      damage(root, 0, 'length-prefix', 15);
      const h = await d.openTopic('t');
      const c = (await h.consumer('', { startFrom: 'earliest' })) as unknown as ConsumerImpl;
      try {
        const runs = await c.pullStored(100, 2000);
        assert.deepEqual(runs.map((r) => [r.first, r.batch.count]), [[0, 15]]);
        for (let k = 0; k < 2; k++) await assert.rejects(c.pullStored(100, 2000), (e: unknown) => isCorrupted(e));
      } finally {
        await c.close();
        await h.close();
      }
    });
  });
});
