/**
 * Tail-following through fs.watch, not the poll (files-driver.md §8.4 step 4): a consumer of this
 * process whose driver polls only every 20 s must still receive events that a child process appends
 * within a few seconds — only the directory watch can wake it that early. The control case (watch
 * made silent) shows that the poll really is 20 s here, so the first case measures the watch.
 *
 * Limits are deliberately generous (3 s against a 20 s poll): no tight timing is asserted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { Driver, type Consumer } from '../../../src/index.js';
import { eventData, type ProducerConfig } from './payload.js';
import { spawnSync } from 'node:child_process';
import { Child, childEnv, childScript, rmDir, sleep, tempDir } from './mp-helpers.js';

const require = createRequire(import.meta.url);
const fsCjs = require('node:fs') as typeof import('node:fs');

const POLL_MS = 20_000;
const LIMIT_MS = 3_000;

/**
 * Runs `fn` with a follower (polling every POLL_MS) of a new topic `fw` in a temporary root. Everything is closed
 * afterwards even when `fn` fails: an open consumer keeps polling (and the process alive).
 */
async function withFollower(fn: (root: string, c: Consumer) => Promise<void>): Promise<void> {
  const root = tempDir('ds-follow-watch-');
  const driver = await Driver.create('files', { root_path: root, poll_interval_ms: POLL_MS });
  let h: Awaited<ReturnType<Driver['openTopic']>> | undefined;
  let c: Consumer | undefined;
  try {
    await driver.createTopic('fw');
    h = await driver.openTopic('fw');
    c = await h.consumer('', { startFrom: 'earliest' });
    await fn(root, c);
  } finally {
    await c?.close().catch(() => undefined);
    await h?.close().catch(() => undefined);
    await driver.close();
    rmDir(root);
  }
}

function silentWatch(): typeof fsCjs.watch {
  return (() => {
    const w = new EventEmitter() as EventEmitter & { close(): void; ref(): unknown; unref(): unknown };
    w.close = () => undefined;
    w.ref = () => w;
    w.unref = () => w;
    return w;
  }) as unknown as typeof fsCjs.watch;
}

describe(`files driver: a follower with poll_interval_ms ${POLL_MS} is woken by fs.watch`, () => {
  it(`events appended by another process arrive within ${LIMIT_MS / 1000} s each (poll ${POLL_MS / 1000} s)`, { timeout: 60_000 }, async () => {
    let child: Child | undefined;
    try {
      await withFollower(async (root, consumer) => {
        // nothing there yet: the first pull is waiting (watching) before the child even starts
        const first = consumer.pull().wait(15_000 + LIMIT_MS);
        const count = 5;
        // pauses of 300-600 ms between pushes: every event finds the consumer already waiting
        const cfg: ProducerConfig = { root, topic: 'fw', proc: 3, start: 0, count, mode: 'follow', pauseMs: [300, 600] };
        child = new Child('producer', [JSON.stringify(cfg)]);
        const latencies: number[] = [];
        for (let i = 0; i < count; i++) {
          const e = await (i === 0 ? first : consumer.pull().wait(10_000));
          const at = performance.timeOrigin + performance.now();
          assert.ok(e !== undefined, `event ${i} not delivered (child stdout ${JSON.stringify(child.lines)}, stderr ${child.stderr})`);
          assert.equal(e.id, BigInt(i));
          const md = e.metadata.json as { proc: number; seq: number };
          assert.equal(md.seq, i);
          assert.ok(e.data.toBuffer().equals(eventData(3, i)));
          // the push completion time printed by the child (`t <seq> <epoch ms>`); the line may come a bit after us
          const line = await child.waitLine((l) => l.startsWith(`t ${i} `), 10_000);
          const pushedAt = Number(line.split(' ')[2]);
          latencies.push(at - pushedAt);
        }
        assert.deepEqual(await child.waitExit(20_000), { code: 0, signal: null }, child.stderr);
        console.log(`follow latency with poll_interval_ms ${POLL_MS}: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
        for (const [i, l] of latencies.entries()) assert.ok(l < LIMIT_MS, `event ${i} arrived ${l.toFixed(0)} ms after its push (poll is ${POLL_MS} ms): fs.watch did not wake the consumer`);
      });
    } finally {
      child?.kill();
    }
  });

  it(`control: with fs.watch silent, the same append is NOT seen within ${LIMIT_MS / 1000} s (the poll really is ${POLL_MS / 1000} s)`, { timeout: 60_000 }, async () => {
    let child: Child | undefined;
    const original = fsCjs.watch;
    fsCjs.watch = silentWatch();
    syncBuiltinESMExports();
    try {
      await withFollower(async (root, c) => {
        // the pull waits (a pull is claimed by wait()) before the child appends
        let delivered = false;
        const waited = c
          .pull()
          .wait(POLL_MS / 2)
          .then(
            (e) => (delivered = e !== undefined),
            () => undefined,
          );
        await sleep(200);
        const cfg: ProducerConfig = { root, topic: 'fw', proc: 3, start: 0, count: 1, mode: 'follow', pauseMs: [0, 0] };
        child = new Child('producer', [JSON.stringify(cfg)]);
        assert.deepEqual(await child.waitExit(20_000), { code: 0, signal: null }, child.stderr);
        await sleep(LIMIT_MS);
        assert.equal(delivered, false, 'without a watch event the consumer waits for its 20 s poll');
        await c.close();
        await waited;
      });
    } finally {
      fsCjs.watch = original;
      syncBuiltinESMExports();
      child?.kill();
    }
  });

  it(`an append landing while the follower starts its watch is not left to the ${POLL_MS / 1000} s poll`, { timeout: 60_000 }, async () => {
    // The first fs.watch call of the library runs a child process to completion (spawnSync) that appends one event,
    // then creates the real watcher: the append lands after the follower's last look at the files and before its
    // watch exists. A follower that starts watching before that last look sees it at once; one that looks first and
    // watches afterwards misses the change and sleeps until its next poll.
    const original = fsCjs.watch;
    let appended = false;
    let appendResult = '';
    try {
      await withFollower(async (root, c) => {
        fsCjs.watch = ((...args: Parameters<typeof fsCjs.watch>) => {
          if (!appended) {
            appended = true;
            const cfg: ProducerConfig = { root, topic: 'fw', proc: 5, start: 0, count: 1, mode: 'follow', pauseMs: [0, 0] };
            const r = spawnSync(process.execPath, [childScript('producer'), JSON.stringify(cfg)], { env: childEnv(), encoding: 'utf8', timeout: 20_000 });
            appendResult = `status ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`;
          }
          return original(...args);
        }) as typeof fsCjs.watch;
        syncBuiltinESMExports();
        const t0 = performance.now();
        const e = await c.pull().wait(LIMIT_MS + 2_000);
        const waited = performance.now() - t0;
        assert.ok(appended, 'the follower watched');
        assert.match(appendResult, /^status 0, stdout "t 0 [\d.]+\\ndone\\n"/, appendResult);
        assert.ok(e !== undefined, `the event appended while the watch started was not delivered within ${((LIMIT_MS + 2_000) / 1000).toFixed(0)} s (the follower waits for its ${POLL_MS / 1000} s poll)`);
        assert.equal(e.id, 0n);
        // the child ran inside the wait (spawnSync); allow for it
        console.log(`append during watch start: delivered after ${waited.toFixed(0)} ms (including the child's run)`);
      });
    } finally {
      fsCjs.watch = original;
      syncBuiltinESMExports();
    }
  });
});
