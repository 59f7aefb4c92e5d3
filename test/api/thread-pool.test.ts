import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncThreadPool, DEFAULT_PRIORITY, InlineThreadPool, makeThreadPool, type ThreadPool } from '../../src/api/thread-pool.js';
import { unhandledRejectionsDuring } from '../helpers/unhandled.js';

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Lets all pending microtasks and a few event-loop turns run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Runs `n` async tasks of random short duration and returns the largest number in progress at once. */
async function maxConcurrency(pool: ThreadPool, n: number): Promise<{ max: number; done: number }> {
  let inProgress = 0;
  let max = 0;
  let done = 0;
  for (let i = 0; i < n; i++) {
    pool.pushWork(async () => {
      inProgress++;
      max = Math.max(max, inProgress);
      await tick(i % 3);
      if (i % 4 === 0) await tick(1);
      inProgress--;
      done++;
    });
  }
  await pool.close();
  return { max, done };
}

describe('makeThreadPool', () => {
  it('makes an inline pool for 0 threads', () => {
    const pool = makeThreadPool(0);
    assert.equal(pool.threadCount, 0);
    assert.ok(pool instanceof InlineThreadPool);
  });

  it('makes an asynchronous pool for n >= 1 threads', () => {
    for (const n of [1, 2, 16]) {
      const pool = makeThreadPool(n);
      assert.equal(pool.threadCount, n);
      assert.ok(pool instanceof AsyncThreadPool);
    }
  });

  it('refuses a negative or non-integer thread count', () => {
    for (const n of [-1, 1.5, NaN, Infinity]) assert.throws(() => makeThreadPool(n), RangeError, String(n));
  });

  it('has DEFAULT_PRIORITY = Number.MAX_SAFE_INTEGER', () => {
    assert.equal(DEFAULT_PRIORITY, Number.MAX_SAFE_INTEGER);
  });
});

describe('ThreadPool with 0 threads (inline)', () => {
  it('runs each task synchronously inside pushWork', () => {
    const pool = makeThreadPool(0);
    const log: string[] = [];
    log.push('before');
    pool.pushWork(() => {
      log.push('task');
    });
    log.push('after');
    pool.pushWork(() => {
      log.push('prioritised task');
    }, 3);
    assert.deepEqual(log, ['before', 'task', 'after', 'prioritised task']);
  });

  it('always has size() 0', async () => {
    const pool = makeThreadPool(0);
    assert.equal(pool.size(), 0);
    const g = gate();
    pool.pushWork(() => g.promise);
    assert.equal(pool.size(), 0);
    g.open();
    await pool.close();
  });

  it('does not let a task error escape pushWork, and keeps working', async () => {
    const pool = makeThreadPool(0);
    let ran = 0;
    const seen = await unhandledRejectionsDuring(async () => {
      assert.doesNotThrow(() =>
        pool.pushWork(() => {
          throw new Error('sync failure');
        }),
      );
      assert.doesNotThrow(() => pool.pushWork(() => Promise.reject(new Error('async failure'))));
      assert.doesNotThrow(() =>
        pool.pushWork(async () => {
          await tick(1);
          throw new Error('later failure');
        }),
      );
      pool.pushWork(() => {
        ran++;
      });
      await pool.close();
    });
    assert.equal(ran, 1);
    assert.deepEqual(seen, []);
  });

  it('close() waits for the asynchronous tasks started inline', async () => {
    const pool = makeThreadPool(0);
    const g = gate();
    let finished = false;
    pool.pushWork(async () => {
      await g.promise;
      finished = true;
    });
    let closed = false;
    const c = pool.close().then(() => {
      closed = true;
    });
    await settle();
    assert.equal(closed, false, 'close() resolved while a task was running');
    g.open();
    await c;
    assert.equal(finished, true);
  });

  it('close() stops intake', async () => {
    const pool = makeThreadPool(0);
    await pool.close();
    let ran = false;
    assert.throws(() =>
      pool.pushWork(() => {
        ran = true;
      }),
    );
    assert.equal(ran, false);
  });
});

describe('ThreadPool with n >= 1 threads', () => {
  it('runs every task', async () => {
    const pool = makeThreadPool(2);
    const ran: number[] = [];
    for (let i = 0; i < 10; i++) {
      pool.pushWork(i % 2 === 0 ? () => void ran.push(i) : async () => void ran.push(i), i % 3 === 0 ? 5 : undefined);
    }
    await pool.close();
    assert.deepEqual(
      ran.sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  it('starts work after pushWork returns (on a microtask), not inside it', async () => {
    const pool = makeThreadPool(1);
    let ran = false;
    pool.pushWork(() => {
      ran = true;
    });
    assert.equal(ran, false);
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(ran, true);
    await pool.close();
  });

  it('never has more than threadCount tasks in progress, and uses all of them', async () => {
    for (const n of [1, 2, 3, 5]) {
      const { max, done } = await maxConcurrency(makeThreadPool(n), 30);
      assert.equal(done, 30);
      assert.equal(max, n, `threadCount ${n}: at most ${max} tasks were in progress at once`);
    }
  });

  it('keeps a task in progress until its promise settles, then starts the next one', async () => {
    const pool = makeThreadPool(1);
    const g = gate();
    const log: string[] = [];
    pool.pushWork(async () => {
      log.push('a start');
      await g.promise;
      log.push('a end');
    });
    pool.pushWork(() => {
      log.push('b');
    });
    await settle();
    assert.deepEqual(log, ['a start']);
    assert.equal(pool.size(), 1);
    g.open();
    await pool.close();
    assert.deepEqual(log, ['a start', 'a end', 'b']);
  });

  it('frees the slot of a task whose promise rejects', async () => {
    const pool = makeThreadPool(1);
    const log: string[] = [];
    const seen = await unhandledRejectionsDuring(async () => {
      pool.pushWork(async () => {
        await tick(1);
        throw new Error('async failure');
      });
      pool.pushWork(() => {
        log.push('next');
      });
      await pool.close();
    });
    assert.deepEqual(log, ['next']);
    assert.deepEqual(seen, []);
  });

  it('does not let task errors escape, and keeps running later tasks', async () => {
    const pool = makeThreadPool(2);
    const log: number[] = [];
    const seen = await unhandledRejectionsDuring(async () => {
      for (let i = 0; i < 6; i++) {
        assert.doesNotThrow(() =>
          pool.pushWork(() => {
            if (i % 3 === 0) throw new Error(`sync failure ${i}`);
            if (i % 3 === 1) return Promise.reject(new Error(`async failure ${i}`));
            log.push(i);
          }),
        );
      }
      await pool.close();
    });
    assert.deepEqual(log, [2, 5]);
    assert.deepEqual(seen, []);
  });
});

describe('ThreadPool ordering', () => {
  /** A 1-thread pool whose only slot is held until the returned gate opens. */
  async function blockedPool(): Promise<{ pool: ThreadPool; release: () => void }> {
    const pool = makeThreadPool(1);
    const g = gate();
    pool.pushWork(() => g.promise);
    await settle();
    assert.equal(pool.size(), 0);
    return { pool, release: g.open };
  }

  it('runs default-priority work in FIFO order', async () => {
    const { pool, release } = await blockedPool();
    const order: number[] = [];
    for (let i = 0; i < 20; i++) pool.pushWork(() => void order.push(i));
    release();
    await pool.close();
    assert.deepEqual(
      order,
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('runs larger priorities first, FIFO among equals, default work ahead of explicit priorities', async () => {
    const { pool, release } = await blockedPool();
    const order: string[] = [];
    const push = (name: string, priority?: number): void => pool.pushWork(() => void order.push(name), priority);
    push('p5-a', 5);
    push('p10-a', 10);
    push('def-a');
    push('p-3', -3);
    push('p5-b', 5);
    push('p10-b', 10);
    push('def-b', DEFAULT_PRIORITY);
    push('p0', 0);
    push('p5-c', 5);
    push('def-c');
    push('p10-c', 10);
    push('p1000', 1000);
    assert.equal(pool.size(), 12);
    release();
    await pool.close();
    assert.deepEqual(order, ['def-a', 'def-b', 'def-c', 'p1000', 'p10-a', 'p10-b', 'p10-c', 'p5-a', 'p5-b', 'p5-c', 'p0', 'p-3']);
  });

  it('keeps FIFO order among many equal priorities', async () => {
    const { pool, release } = await blockedPool();
    const order: number[] = [];
    // interleave two priorities so the queue has to reorder
    for (let i = 0; i < 50; i++) pool.pushWork(() => void order.push(i), i % 2 === 0 ? 7 : 8);
    release();
    await pool.close();
    const odd = Array.from({ length: 25 }, (_, i) => 2 * i + 1);
    const even = Array.from({ length: 25 }, (_, i) => 2 * i);
    assert.deepEqual(order, [...odd, ...even]);
  });

  it('orders tasks pushed while others run by priority when a slot frees', async () => {
    const { pool, release } = await blockedPool();
    const order: string[] = [];
    pool.pushWork(async () => {
      order.push('low');
      await tick(1);
    }, 1);
    pool.pushWork(async () => {
      order.push('high');
      // pushed while running: a higher priority than the waiting 'mid' task
      pool.pushWork(() => void order.push('higher'), 100);
      await tick(1);
    }, 50);
    pool.pushWork(() => void order.push('mid'), 10);
    release();
    // not close(): it would stop intake before 'high' pushes its task
    for (let i = 0; i < 200 && order.length < 4; i++) await tick(1);
    await pool.close();
    assert.deepEqual(order, ['high', 'higher', 'mid', 'low']);
  });
});

describe('ThreadPool size()', () => {
  it('counts queued tasks that have not started', async () => {
    const pool = makeThreadPool(2);
    assert.equal(pool.size(), 0);
    const g = gate();
    for (let i = 0; i < 5; i++) pool.pushWork(() => g.promise, i === 4 ? 3 : undefined);
    assert.equal(pool.size(), 5, 'nothing has started yet');
    await settle();
    assert.equal(pool.size(), 3, 'two tasks are in progress');
    g.open();
    await pool.close();
    assert.equal(pool.size(), 0);
  });
});

describe('ThreadPool close()', () => {
  it('resolves at once on an idle pool', async () => {
    const pool = makeThreadPool(3);
    await pool.close();
    assert.equal(pool.size(), 0);
  });

  it('waits for queued and running tasks', async () => {
    const pool = makeThreadPool(2);
    const g = gate();
    let finished = 0;
    for (let i = 0; i < 6; i++) {
      pool.pushWork(async () => {
        await g.promise;
        await tick(1);
        finished++;
      });
    }
    let closed = false;
    const c = pool.close().then(() => {
      closed = true;
    });
    await settle();
    await tick(5);
    assert.equal(closed, false, 'close() resolved while tasks were queued or running');
    assert.equal(finished, 0);
    g.open();
    await c;
    assert.equal(finished, 6);
    assert.equal(pool.size(), 0);
  });

  it('stops intake: pushWork throws after close()', async () => {
    const pool = makeThreadPool(1);
    const closing = pool.close();
    let ran = false;
    assert.throws(() =>
      pool.pushWork(() => {
        ran = true;
      }),
    );
    await closing;
    await settle();
    assert.equal(ran, false);
  });

  it('can be awaited by several callers', async () => {
    const pool = makeThreadPool(1);
    const g = gate();
    pool.pushWork(() => g.promise);
    const all = Promise.all([pool.close(), pool.close()]);
    g.open();
    await all;
  });
});
