/**
 * SequenceGuard (src/drivers/kafka/sequence-guard.ts): which batches of an idempotent producer may be sent, so
 * that a partition's batches are appended in sequence order even when some fail.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SequenceGuard } from '../../../src/drivers/kafka/sequence-guard.js';

const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('kafka SequenceGuard', () => {
  it('numbers each partition’s batches on its own', () => {
    const g = new SequenceGuard();
    assert.deepEqual([g.nextOrdinal('t:0'), g.nextOrdinal('t:0'), g.nextOrdinal('t:1'), g.nextOrdinal('t:0')], [0, 1, 0, 2]);
  });

  it('until a batch of the partition is acknowledged, the next one waits for the answer to the one in flight', async () => {
    const g = new SequenceGuard();
    await g.ready(['t:0']); // nothing in flight
    g.sent('t:0');
    assert.equal(await settledWithin(g.ready(['t:0']), 30), false, 'waits while the first batch has no answer');
    assert.equal(await settledWithin(g.ready(['t:1']), 30), true, 'other partitions do not wait');
    const waiting = g.ready(['t:0']);
    g.appended('t:0');
    assert.equal(await settledWithin(waiting, 30), true);
    // acknowledged: pipelined from now on
    g.sent('t:0');
    g.sent('t:0');
    assert.equal(await settledWithin(g.ready(['t:0']), 30), true);
  });

  it('an unanswered first batch that fails releases the wait, and the batch after it may not be sent before its retry', async () => {
    const g = new SequenceGuard();
    const a = g.nextOrdinal('t:0');
    const b = g.nextOrdinal('t:0');
    assert.deepEqual(g.admit('t:0', a), { send: true });
    g.sent('t:0');
    const waiting = g.ready(['t:0']);
    g.failed('t:0', a);
    assert.equal(await settledWithin(waiting, 30), true);
    assert.deepEqual(g.admit('t:0', b), { send: false }, 'b behind the failed a');
    assert.deepEqual(g.admit('t:0', a), { send: true }, 'the retry of a goes');
    g.sent('t:0');
    g.appended('t:0');
    assert.deepEqual(g.admit('t:0', b), { send: true }, 'then b');
  });

  it('a batch that was never sent (no leader) holds back the later ones, even once the partition is confirmed', () => {
    const g = new SequenceGuard();
    const [a, b, c] = [g.nextOrdinal('t:0'), g.nextOrdinal('t:0'), g.nextOrdinal('t:0')];
    g.sent('t:0');
    g.appended('t:0'); // a
    g.failed('t:0', b); // not sent
    assert.deepEqual(g.admit('t:0', c), { send: false });
    assert.deepEqual(g.admit('t:1', 0), { send: true }, 'other partitions go on');
    assert.deepEqual(g.admit('t:0', b), { send: true });
    assert.deepEqual(g.admit('t:0', c), { send: true }, 'c goes once b is on its way again');
    assert.equal(a, 0);
  });

  it('after the producer gives a partition up, its later batches fail with that error', () => {
    const g = new SequenceGuard();
    const err = new Error('gave up');
    g.failed('t:0', 0);
    g.giveUp('t:0', err);
    assert.deepEqual(g.admit('t:0', 1), { send: false, dead: err });
    assert.deepEqual(g.admit('t:1', 0), { send: true });
  });
});
