import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deferred, sleep, type Future } from '../../src/api/future.js';
import { unhandledRejectionsDuring } from '../helpers/unhandled.js';

/** Resolves with 'blocked' on the next turn of the event loop (after all pending microtasks). */
function nextTurn(): Promise<'blocked'> {
  return new Promise((resolve) => setImmediate(() => resolve('blocked')));
}

describe('Future wait() without a timeout', () => {
  it('waits until the future is resolved', async () => {
    const d = new Deferred<number>();
    let got: number | undefined;
    const p = d.wait().then((v) => {
      got = v;
    });
    await sleep(20);
    assert.equal(got, undefined, 'wait() returned before the future was settled');
    d.resolve(42);
    await p;
    assert.equal(got, 42);
  });

  it('treats a negative timeout as "forever"', async () => {
    const d = new Deferred<string>();
    const p = d.wait(-5);
    const early = await Promise.race([p, sleep(30).then(() => 'still pending' as const)]);
    assert.equal(early, 'still pending');
    d.resolve('done');
    assert.equal(await p, 'done');
  });

  it('returns the value at once when already settled', async () => {
    assert.equal(await Deferred.resolved('x').wait(), 'x');
  });

  it('rejects with the stored error', async () => {
    const d = new Deferred<number>();
    const p = d.wait();
    const err = new Error('boom');
    d.reject(err);
    await assert.rejects(p, (e) => e === err);
  });
});

describe('Future wait(0) is a poll', () => {
  it('gives undefined for a pending future without blocking', async () => {
    const d = new Deferred<number>();
    const r = await Promise.race([d.wait(0), nextTurn()]);
    assert.equal(r, undefined);
    assert.equal(d.completed(), false);
  });

  it('does not turn into a value when the future settles later', async () => {
    const d = new Deferred<number>();
    const p = d.wait(0);
    d.resolve(7);
    assert.equal(await p, undefined);
  });

  it('gives the value of a resolved future without blocking', async () => {
    const d = new Deferred<number>();
    d.resolve(5);
    assert.equal(await Promise.race([d.wait(0), nextTurn()]), 5);
  });

  it('gives a falsy value as it is', async () => {
    assert.equal(await Deferred.resolved(0).wait(0), 0);
    assert.equal(await Deferred.resolved<null>(null).wait(0), null);
  });

  it('rejects with the stored error of a rejected future', async () => {
    const err = new Error('poll failure');
    const d = Deferred.rejected<number>(err);
    await assert.rejects(Promise.race([d.wait(0), nextTurn()]), (e) => e === err);
  });
});

describe('Future wait(t > 0)', () => {
  it('gives undefined after about t ms when the future is not settled, never earlier', async () => {
    const d = new Deferred<number>();
    for (const t of [1, 30, 80]) {
      const start = performance.now();
      const r = await d.wait(t);
      const elapsed = performance.now() - start;
      assert.equal(r, undefined);
      assert.ok(elapsed >= t - 1, `wait(${t}) returned after ${elapsed.toFixed(2)} ms`);
      assert.ok(elapsed < t + 2000, `wait(${t}) returned after ${elapsed.toFixed(2)} ms`);
    }
    assert.equal(d.completed(), false);
  });

  it('gives the value as soon as the future is resolved in time', async () => {
    const d = new Deferred<string>();
    setTimeout(() => d.resolve('in time'), 20);
    const start = performance.now();
    const r = await d.wait(10_000);
    const elapsed = performance.now() - start;
    assert.equal(r, 'in time');
    assert.ok(elapsed < 5000, `took ${elapsed.toFixed(1)} ms`);
  });

  it('gives the value at once when already resolved', async () => {
    const d = Deferred.resolved(3);
    assert.equal(await Promise.race([d.wait(10_000), nextTurn()]), 3);
  });

  it('rejects when the future is rejected in time', async () => {
    const d = new Deferred<number>();
    const err = new Error('late failure');
    setTimeout(() => d.reject(err), 10);
    await assert.rejects(d.wait(10_000), (e) => e === err);
  });

  it('does not cancel the operation: the value is still available after a timed-out wait', async () => {
    const d = new Deferred<number>();
    assert.equal(await d.wait(5), undefined);
    d.resolve(11);
    assert.equal(await d.wait(), 11);
    assert.equal(await d.wait(5), 11);
    assert.equal(await d.wait(0), 11);
  });

  it('settles several concurrent waiters with the same value', async () => {
    const d = new Deferred<{ n: number }>();
    const value = { n: 1 };
    const waits = [d.wait(), d.wait(10_000), d.wait(-1), d.then((v) => v)];
    const timedOut = d.wait(1);
    assert.equal(await timedOut, undefined);
    d.resolve(value);
    for (const w of await Promise.all(waits)) assert.equal(w, value);
  });
});

describe('Future as a thenable', () => {
  it('can be awaited for its value', async () => {
    const d = new Deferred<number>();
    setTimeout(() => d.resolve(9), 5);
    const f: Future<number> = d;
    assert.equal(await f, 9);
    assert.equal(await f, 9, 'the result is memoised');
  });

  it('works with Promise.resolve and Promise.all', async () => {
    const a = new Deferred<number>();
    const b = Deferred.resolved(2);
    const all = Promise.all([a, b, Promise.resolve(a)]);
    a.resolve(1);
    assert.deepEqual(await all, [1, 2, 1]);
  });

  it('propagates a rejection through await, then, catch and finally', async () => {
    const err = new Error('rejected');
    const d = new Deferred<number>();
    setTimeout(() => d.reject(err), 5);
    await assert.rejects(
      (async () => {
        await d;
      })(),
      (e) => e === err,
    );
    assert.equal(await d.then(() => 'ok', (e) => e), err);
    assert.equal(await d.catch((e) => e), err);
    let ran = false;
    await assert.rejects(
      d.finally(() => {
        ran = true;
      }),
      (e) => e === err,
    );
    assert.ok(ran);
  });

  it('runs then callbacks with the resolved value', async () => {
    const d = new Deferred<number>();
    const p = d.then((v) => v * 2);
    d.resolve(21);
    assert.equal(await p, 42);
  });
});

describe('Future completed()', () => {
  it('is false while pending and true once resolved or rejected', async () => {
    const a = new Deferred<number>();
    const b = new Deferred<number>();
    assert.equal(a.completed(), false);
    assert.equal(b.completed(), false);
    a.resolve(1);
    b.reject(new Error('x'));
    assert.equal(a.completed(), true);
    assert.equal(b.completed(), true);
    await assert.rejects(b.wait());
  });

  it('is true for Deferred.resolved and Deferred.rejected', () => {
    assert.equal(Deferred.resolved(1).completed(), true);
    assert.equal(Deferred.rejected(new Error('x')).completed(), true);
  });
});

describe('Future settles once', () => {
  it('keeps the first value when resolved twice', async () => {
    const d = new Deferred<number>();
    d.resolve(1);
    d.resolve(2);
    assert.equal(await d, 1);
  });

  it('keeps the value when rejected after resolution', async () => {
    const d = new Deferred<number>();
    d.resolve(1);
    d.reject(new Error('too late'));
    assert.equal(await d.wait(), 1);
    assert.equal(d.failure, undefined);
  });

  it('keeps the first error when rejected twice, or resolved after rejection', async () => {
    const first = new Error('first');
    const d = new Deferred<number>();
    d.reject(first);
    d.reject(new Error('second'));
    d.resolve(3);
    await assert.rejects(d.wait(), (e) => e === first);
    await assert.rejects(d.wait(0), (e) => e === first);
    assert.equal(d.failure?.error, first);
  });

  it('keeps the first outcome for waiters that were already waiting', async () => {
    const d = new Deferred<string>();
    const w = d.wait(10_000);
    d.resolve('a');
    d.resolve('b');
    assert.equal(await w, 'a');
  });
});

describe('Future lazy resolution', () => {
  it('computes the value only when read, and only once', async () => {
    let calls = 0;
    const d = new Deferred<string>();
    d.resolveLazy(
      (a: string, b: number) => {
        calls++;
        return `${a}:${b}`;
      },
      'id',
      4,
    );
    assert.equal(d.completed(), true);
    assert.equal(calls, 0);
    assert.equal(await d.wait(), 'id:4');
    assert.equal(await d, 'id:4');
    assert.equal(await d.wait(0), 'id:4');
    assert.equal(calls, 1);
  });

  it('delivers the lazy value to waiters that were already waiting', async () => {
    const d = new Deferred<number>();
    const w = d.wait(10_000);
    d.resolveLazy((a: number, b) => a + b, 40, 2);
    assert.equal(await w, 42);
  });
});

describe('Future rejection without a waiter', () => {
  it('does not raise an unhandledRejection when a rejected future is ignored', async () => {
    const seen = await unhandledRejectionsDuring(() => {
      const d = new Deferred<number>();
      d.reject(new Error('ignored 1'));
      Deferred.rejected(new Error('ignored 2'));
      d.completed();
      assert.ok(d.failure?.error instanceof Error);
    });
    assert.deepEqual(seen, []);
  });

  it('does not raise one after a poll or a timed-out wait gave up on the future', async () => {
    const seen = await unhandledRejectionsDuring(async () => {
      const d = new Deferred<number>();
      assert.equal(await d.wait(0), undefined);
      assert.equal(await d.wait(2), undefined);
      d.reject(new Error('ignored after the waits'));
    });
    assert.deepEqual(seen, []);
  });

  it('exposes the error through failure without a promise', () => {
    const err = new Error('e');
    assert.equal(Deferred.rejected(err).failure?.error, err);
    assert.equal(new Deferred().failure, undefined);
    assert.equal(Deferred.resolved(1).failure, undefined);
  });
});

describe('sleep', () => {
  it('resolves after about ms milliseconds', async () => {
    const start = performance.now();
    await sleep(30);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 29 && elapsed < 2030, `slept ${elapsed.toFixed(1)} ms`);
  });

  it('resolves at once when the signal aborts', async () => {
    const ac = new AbortController();
    const start = performance.now();
    const p = sleep(60_000, ac.signal);
    setTimeout(() => ac.abort(), 5);
    await p;
    assert.ok(performance.now() - start < 5000);
    const pre = new AbortController();
    pre.abort();
    assert.equal(await Promise.race([sleep(60_000, pre.signal).then(() => 'done'), nextTurn()]), 'done');
  });
});
