/**
 * Tail-following (files-driver.md §8.4, §13.2): a consumer in this process follows a partition
 * that a child process appends to at irregular intervals. Every event is seen exactly once and in
 * order; the delivery latency (child's push completion → our receipt) is measured and reported;
 * delivery still works when directory watching is impossible (fs.watch throwing) or silent
 * (events lost, as on NFS), through the poll; and an idle follower uses almost no CPU.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { Driver, type Json } from '../../../src/index.js';
import { eventData, type ProducerConfig } from './payload.js';
import { Child, rmDir, tempDir } from './mp-helpers.js';

const require = createRequire(import.meta.url);
const fsCjs = require('node:fs') as typeof import('node:fs');

interface FollowResult {
  latencies: number[];
  ids: number[];
  seqs: number[];
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
  const avg = s.reduce((a, b) => a + b, 0) / s.length;
  return `n=${s.length} min=${(s[0] as number).toFixed(2)} median=${q(0.5).toFixed(2)} avg=${avg.toFixed(2)} p90=${q(0.9).toFixed(2)} p99=${q(0.99).toFixed(2)} max=${(s[s.length - 1] as number).toFixed(2)} ms`;
}

/** Creates a topic, follows it with a consumer of this process while a child appends `count` events. */
async function follow(driverOptions: Record<string, Json>, count: number, pauseMs: [number, number]): Promise<FollowResult> {
  const root = tempDir('ds-follow-');
  let child: Child | undefined;
  const driver = await Driver.create('files', { ...driverOptions, root_path: root });
  try {
    await driver.createTopic('fl');
    const h = await driver.openTopic('fl');
    const c = await h.consumer('', { startFrom: 'earliest' });
    const cfg: ProducerConfig = { root, topic: 'fl', proc: 7, start: 0, count, mode: 'follow', pauseMs };
    child = new Child('producer', [JSON.stringify(cfg)]);
    const received: { id: number; seq: number; at: number }[] = [];
    for (let i = 0; i < count; i++) {
      const e = await c.pull().wait(10_000);
      assert.ok(e !== undefined, `event ${i} not delivered within 10 s (child stderr: ${child.stderr})`);
      const at = performance.timeOrigin + performance.now();
      const md = e.metadata.json as { proc: number; seq: number };
      assert.ok(e.data.toBuffer().equals(eventData(md.proc, md.seq)), `data of event ${i}`);
      received.push({ id: Number(e.id), seq: md.seq, at });
    }
    const ex = await child.waitExit(20_000);
    assert.deepEqual(ex, { code: 0, signal: null }, child.stderr);
    assert.equal(await c.pull().wait(200), undefined, 'nothing beyond the pushed events');
    const pushedAt = new Map<number, number>();
    for (const l of child.lines) {
      const m = /^t (\d+) ([\d.]+)$/.exec(l);
      if (m !== null) pushedAt.set(Number(m[1]), Number(m[2]));
    }
    assert.equal(pushedAt.size, count);
    await c.close();
    await h.close();
    return {
      ids: received.map((r) => r.id),
      seqs: received.map((r) => r.seq),
      latencies: received.map((r) => r.at - (pushedAt.get(r.seq) as number)),
    };
  } finally {
    child?.kill();
    await driver.close();
    rmDir(root);
  }
}

function checkExactlyOnceInOrder(r: FollowResult, count: number): void {
  const want = Array.from({ length: count }, (_, i) => i);
  assert.deepEqual(r.ids, want, 'ids 0..n-1, each once, in order');
  assert.deepEqual(r.seqs, want, 'events in push order');
}

/** Replaces fs.watch (seen by the library's `import * as fs`) for the duration of `fn`. */
async function withPatchedWatch<T>(impl: typeof fsCjs.watch, fn: () => Promise<T>): Promise<T> {
  const original = fsCjs.watch;
  fsCjs.watch = impl;
  syncBuiltinESMExports();
  try {
    return await fn();
  } finally {
    fsCjs.watch = original;
    syncBuiltinESMExports();
  }
}

describe('files driver: following a partition written by another process', () => {
  it('300 events at irregular intervals: each seen once, in order; latency reported', { timeout: 30_000 }, async () => {
    const r = await follow({}, 300, [0, 15]);
    checkExactlyOnceInOrder(r, 300);
    console.log(`follow latency with fs.watch (poll_interval_ms 50): ${stats(r.latencies)}`);
    assert.ok(Math.max(...r.latencies) < 1000, 'every event delivered within 1 s of its push');
  });

  it('directory watch impossible (fs.watch throws): delivery through the poll (poll_interval_ms 20)', { timeout: 30_000 }, async () => {
    let calls = 0;
    const r = await withPatchedWatch(
      (() => {
        calls++;
        throw Object.assign(new Error('ENOSPC: no space left for inotify watches'), { code: 'ENOSPC' });
      }) as typeof fsCjs.watch,
      () => follow({ poll_interval_ms: 20 }, 100, [0, 15]),
    );
    assert.ok(calls > 0, 'the library tried to watch');
    checkExactlyOnceInOrder(r, 100);
    console.log(`follow latency without fs.watch (throws; poll_interval_ms 20): ${stats(r.latencies)}`);
    assert.ok(Math.max(...r.latencies) < 1000);
  });

  it('directory watch silent (events lost, as on NFS): delivery through the poll (poll_interval_ms 20)', { timeout: 30_000 }, async () => {
    let calls = 0;
    const r = await withPatchedWatch(
      (() => {
        calls++;
        const w = new EventEmitter() as EventEmitter & { close(): void; ref(): unknown; unref(): unknown };
        w.close = () => undefined;
        w.ref = () => w;
        w.unref = () => w;
        return w;
      }) as unknown as typeof fsCjs.watch,
      () => follow({ poll_interval_ms: 20 }, 150, [0, 15]),
    );
    assert.ok(calls > 0, 'the library watched');
    checkExactlyOnceInOrder(r, 150);
    console.log(`follow latency with a silent fs.watch (poll_interval_ms 20): ${stats(r.latencies)}`);
    assert.ok(Math.max(...r.latencies) < 1000);
  });

  for (const poll of [50, 20]) {
    it(`an idle follower (pending pull, poll_interval_ms ${poll}) uses < 100 ms CPU per second`, { timeout: 20_000 }, async () => {
      const root = tempDir('ds-idle-');
      const driver = await Driver.create('files', { root_path: root, poll_interval_ms: poll });
      try {
        await driver.createTopic('idle');
        const h = await driver.openTopic('idle');
        const p = await h.producer();
        await p.push({ x: 1 });
        await p.close();
        const c = await h.consumer('', { startFrom: 'earliest' });
        assert.equal((await c.pull().wait(5000))?.id, 0n);
        const pending = c.pull();
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        assert.equal(await pending.wait(1000), undefined);
        const cpu = process.cpuUsage(cpu0);
        const wall = performance.now() - t0;
        const used = (cpu.user + cpu.system) / 1000;
        console.log(`idle follower, poll_interval_ms ${poll}: ${used.toFixed(1)} ms CPU over ${wall.toFixed(0)} ms`);
        assert.ok(wall >= 990, 'the timed wait lasted its timeout');
        assert.ok(used < 100, `CPU while idle: ${used.toFixed(1)} ms`);
        await c.close();
        await h.close();
      } finally {
        await driver.close();
        rmDir(root);
      }
    });
  }
});
