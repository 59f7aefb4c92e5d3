/**
 * Reads of large events are bounded in bytes (files-driver.md §8.3): with a data selector or allocator, one read of a
 * partition allocates the selected data of at most ~16 MiB of events at once (always at least one event), as the
 * bulk path reads at most 16 MiB, instead of up to a whole fetch of 1024 events.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Driver, type ConsumerOptions } from '../../../src/index.js';
import { rmDir, tempDir } from './mp-helpers.js';

const MIB = 1024 * 1024;
const EVENTS = 48;

function eventBytes(i: number): Buffer {
  return Buffer.alloc(MIB, i & 0xff);
}

/**
 * An allocator that records the bytes it is asked for in one synchronous burst: the reader allocates the memory of all
 * the events of one read before reading any (readSelected), so a burst is one read's allocation.
 */
function burstAllocator(): { allocator: NonNullable<ConsumerOptions['dataAllocator']>; maxBurst: () => number } {
  let burst = 0;
  let max = 0;
  const allocator: NonNullable<ConsumerOptions['dataAllocator']> = (_md, s) => {
    if (burst === 0) {
      setImmediate(() => {
        max = Math.max(max, burst);
        burst = 0;
      });
    }
    burst += s.size;
    return Buffer.alloc(s.size);
  };
  return { allocator, maxBurst: () => Math.max(max, burst) };
}

describe('files driver: selective reads are bounded in bytes', () => {
  for (const selector of [false, true]) {
    it(`${EVENTS} events of 1 MiB with a custom allocator${selector ? ' and selector' : ''}: at most ~16 MiB allocated per read`, { timeout: 60_000 }, async () => {
      const root = tempDir('ds-read-bounds-');
      const d = await Driver.create('files', { root_path: root });
      try {
        await d.createTopic('t');
        const h = await d.openTopic('t');
        const p = await h.producer();
        for (let i = 0; i < EVENTS; i++) {
          await p.ready();
          void p.push({ i }, eventBytes(i));
        }
        await p.close();

        const { allocator, maxBurst } = burstAllocator();
        const o: ConsumerOptions = { startFrom: 'earliest', dataAllocator: allocator };
        // the second half of each event's data
        if (selector) o.dataSelector = (_md, full) => full.makeSubView(full.size / 2, full.size / 2);
        const c = await h.consumer('', o);
        try {
          for (let i = 0; i < EVENTS; i++) {
            const e = await c.pull().wait(10_000);
            assert.ok(e !== undefined, `event ${i}`);
            assert.equal(e.id, BigInt(i));
            const want = selector ? eventBytes(i).subarray(MIB / 2) : eventBytes(i);
            assert.ok(Buffer.from(e.data.toBuffer()).equals(want), `data of event ${i}`);
          }
          console.log(`largest allocation of one read: ${(maxBurst() / MIB).toFixed(1)} MiB`);
          assert.ok(maxBurst() <= 17 * MIB, `at most 16 MiB + one event per read, got ${(maxBurst() / MIB).toFixed(1)} MiB`);
        } finally {
          await c.close();
          await h.close();
        }
      } finally {
        await d.close();
        rmDir(root);
      }
    });
  }
});
