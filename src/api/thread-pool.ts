/**
 * ThreadPool (api.md §6). JavaScript runs user code on one thread, so a "thread pool" here is a
 * scheduler of asynchronous tasks: `threadCount` bounds how many tasks are in progress at once
 * (a task is in progress until the promise it returns settles). With 0 threads, work runs inline,
 * synchronously, inside `pushWork` — the default of every built-in driver, and the fastest.
 * Real parallelism for I/O comes from libuv underneath the drivers, not from this pool.
 */

export interface ThreadPool {
  readonly threadCount: number;
  /** Schedules `fn`; larger priorities first, FIFO among equals. Errors never escape the pool. */
  pushWork(fn: () => void | Promise<void>, priority?: number): void;
  /** Number of queued (not yet started) tasks. */
  size(): number;
  /** Stops intake and waits for queued and running tasks. */
  close(): Promise<void>;
}

export const DEFAULT_PRIORITY = Number.MAX_SAFE_INTEGER;

/** Runs each task synchronously inside pushWork. */
export class InlineThreadPool implements ThreadPool {
  readonly threadCount = 0;
  private running = new Set<Promise<void>>();
  private closed = false;

  pushWork(fn: () => void | Promise<void>): void {
    if (this.closed) throw new Error('ThreadPool is closed');
    try {
      const r = fn();
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        const p = (r as Promise<void>).then(
          () => undefined,
          () => undefined,
        );
        this.running.add(p);
        void p.then(() => this.running.delete(p));
      }
    } catch {
      // the owner routes task errors to its futures; the pool never rethrows them
    }
  }

  size(): number {
    return 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running]);
  }
}

interface Task {
  fn: () => void | Promise<void>;
  priority: number;
  seq: number;
}

/**
 * At most `threadCount` tasks in progress. Default-priority work (the common case) sits in a FIFO
 * queue served before a binary heap of explicitly prioritised tasks. Tasks that complete
 * synchronously never hold a slot, and are run back to back in one microtask.
 */
export class AsyncThreadPool implements ThreadPool {
  private heap: Task[] = [];
  private fifo: (() => void | Promise<void>)[] = [];
  private fifoHead = 0;
  private seq = 0;
  private active = 0;
  private closed = false;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(readonly threadCount: number) {
    if (!Number.isInteger(threadCount) || threadCount < 1) throw new RangeError('threadCount must be an integer >= 1');
  }

  pushWork(fn: () => void | Promise<void>, priority = DEFAULT_PRIORITY): void {
    if (this.closed) throw new Error('ThreadPool is closed');
    if (priority >= DEFAULT_PRIORITY) this.fifo.push(fn);
    else this.heapPush({ fn, priority, seq: this.seq++ });
    this.schedule();
  }

  size(): number {
    return this.fifo.length - this.fifoHead + this.heap.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.active === 0 && this.size() === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Work never runs inside pushWork (unlike the inline pool): it starts on a microtask. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.drain();
    });
  }

  private next(): (() => void | Promise<void>) | undefined {
    if (this.fifoHead < this.fifo.length) {
      const fn = this.fifo[this.fifoHead++];
      if (this.fifoHead === this.fifo.length) {
        this.fifo = [];
        this.fifoHead = 0;
      }
      return fn;
    }
    return this.heap.length > 0 ? this.heapPop().fn : undefined;
  }

  private drain(): void {
    while (this.active < this.threadCount) {
      const fn = this.next();
      if (fn === undefined) break;
      let r: void | Promise<void>;
      try {
        r = fn();
      } catch {
        continue; // the owner routes task errors to its futures
      }
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        this.active++;
        const done = (): void => {
          this.active--;
          this.drain();
        };
        (r as Promise<void>).then(done, done);
      }
    }
    if (this.active === 0 && this.size() === 0 && this.idleWaiters.length > 0) {
      const ws = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of ws) w();
    }
  }

  private less(a: Task, b: Task): boolean {
    return a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
  }

  private heapPush(t: Task): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Task, h[p] as Task)) break;
      [h[i], h[p]] = [h[p] as Task, h[i] as Task];
      i = p;
    }
  }

  private heapPop(): Task {
    const h = this.heap;
    const top = h[0] as Task;
    const last = h.pop() as Task;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as Task, h[m] as Task)) m = l;
        if (r < h.length && this.less(h[r] as Task, h[m] as Task)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Task, h[i] as Task];
        i = m;
      }
    }
    return top;
  }
}

export function makeThreadPool(count: number): ThreadPool {
  return count === 0 ? new InlineThreadPool() : new AsyncThreadPool(count);
}
