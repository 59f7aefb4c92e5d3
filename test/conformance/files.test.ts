/** Runs the driver conformance suite against the `files` driver (temporary roots under os.tmpdir()). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Driver } from '../../src/index.js';
import { driverConformanceSuite } from './suite.js';

const roots: string[] = [];
const rootOf = new WeakMap<Driver, string>();
let counter = 0;

function open(root: string): Promise<Driver> {
  return Driver.create('files', { root_path: root, use_file_locking: true, flush_behavior: 'on_flush' });
}

driverConformanceSuite({
  name: 'files',
  async createDriver() {
    const root = await mkdtemp(join(tmpdir(), 'diaspora-conformance-files-'));
    roots.push(root);
    const d = await open(root);
    rootOf.set(d, root);
    return d;
  },
  async createPeerDriver(d) {
    const root = rootOf.get(d);
    if (root === undefined) throw new Error('not a driver of this harness');
    const peer = await open(root);
    rootOf.set(peer, root);
    return peer;
  },
  topicOptions: (n) => ({ num_partitions: n }),
  topicName: (prefix) => `${prefix}-${process.pid}-${++counter}`,
  async cleanup() {
    await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
  },
  supportsHeaders: true,
  duplicateTopicMessage: (name) => `Topic already exists: ${name}`,
});

/**
 * White-box check of the files driver (not part of the generic suite): an idle consumer re-arms
 * the partition's in-process Notifier on every fallback poll (files-driver.md §8). The armed
 * waiters must not pile up while nothing is written, or an idle follower leaks memory forever.
 */
describe('files driver specifics', () => {
  it('an idle consumer does not accumulate in-process notifier waiters', { timeout: 10000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'diaspora-conformance-files-'));
    roots.push(root);
    const d = await open(root);
    try {
      await d.createTopic('idle', { options: { num_partitions: 1 } });
      const topic = await d.openTopic('idle');
      const c = await topic.consumer('');
      try {
        assert.equal(await c.pull().wait(1000), undefined);
        const parts = (d.impl as unknown as { partitions: Map<string, { notifier: { size: number } }> }).partitions;
        const counts = [...parts.values()].map((p) => p.notifier.size);
        assert.ok(counts.length > 0, 'the driver tracks the partition');
        // one pending fetch arms at most one waiter per partition
        for (const n of counts) assert.ok((n as number) <= 2, `${n} notifier waiters after a 1 s idle wait (poll interval 50 ms)`);
      } finally {
        await c.close();
        await topic.close();
      }
    } finally {
      await d.close();
    }
  });
});

describe('files driver: no end-of-stream marker', () => {
  it('producer.markEndOfStream() rejects with an explicit error (the files format has no marker)', { timeout: 10000 }, async () => {
    const root = await mkdtemp(join(tmpdir(), 'diaspora-conformance-files-'));
    roots.push(root);
    const d = await open(root);
    try {
      await d.createTopic('eos', { options: { num_partitions: 1 } });
      const t = await d.openTopic('eos');
      const p = await t.producer();
      await assert.rejects(p.markEndOfStream(), /The files driver has no end-of-stream marker/);
      await p.close();
      await t.close();
    } finally {
      await d.close();
    }
  });
});
