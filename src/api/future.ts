/**
 * Futures (api.md §4). A Future is a thenable with a timed `wait`. It is settled by its owner
 * through {@link Deferred}. No Promise is allocated until somebody waits, which keeps `push()`
 * cheap at millions of events per second and means an ignored failed push never becomes an
 * unhandled rejection.
 */

export interface Future<T> extends PromiseLike<T> {
  /** `wait()`/`wait(<0)`: until settled; `wait(0)`: poll; `wait(t>0)`: the value, or undefined after t ms. */
  wait(timeoutMs?: number): Promise<T | undefined>;
  completed(): boolean;
  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R>;
  finally(onfinally?: (() => void) | null): Promise<T>;
}

type Listener<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };

const PENDING = 0;
const FULFILLED = 1;
const REJECTED = 2;

/** The owner's side of a Future: settle it once with `resolve` or `reject`. */
export class Deferred<T> implements Future<T> {
  private state: 0 | 1 | 2 = PENDING;
  private result: unknown;
  private listeners: Listener<T>[] | undefined;
  /** Called when somebody starts waiting (used by consumers to claim events lazily). */
  onWait: (() => void) | undefined;
  /** Called when a timed wait gives up and nobody else waits any more. */
  onAbandon: (() => void) | undefined;
  private waiting = 0;

  static resolved<T>(value: T): Deferred<T> {
    const d = new Deferred<T>();
    d.resolve(value);
    return d;
  }

  static rejected<T>(err: unknown): Deferred<T> {
    const d = new Deferred<T>();
    d.reject(err);
    return d;
  }

  resolve(value: T): void {
    if (this.state !== PENDING) return;
    this.state = FULFILLED;
    this.result = value;
    this.flush();
  }

  reject(err: unknown): void {
    if (this.state !== PENDING) return;
    this.state = REJECTED;
    this.result = err;
    this.flush();
  }

  completed(): boolean {
    return this.state !== PENDING;
  }

  /** True while at least one caller waits on this future. */
  get hasWaiters(): boolean {
    return this.waiting > 0;
  }

  private flush(): void {
    const ls = this.listeners;
    if (ls === undefined) return;
    this.listeners = undefined;
    for (const l of ls) {
      if (this.state === FULFILLED) l.resolve(this.result as T);
      else l.reject(this.result);
    }
  }

  private settled(): Promise<T> {
    if (this.state === FULFILLED) return Promise.resolve(this.result as T);
    if (this.state === REJECTED) return Promise.reject(this.result);
    return new Promise<T>((resolve, reject) => {
      (this.listeners ??= []).push({ resolve, reject });
      this.waiting++;
      this.onWait?.();
    });
  }

  wait(timeoutMs = -1): Promise<T | undefined> {
    if (this.state === FULFILLED) return Promise.resolve(this.result as T);
    if (this.state === REJECTED) return Promise.reject(this.result);
    if (timeoutMs === 0) return Promise.resolve(undefined);
    if (timeoutMs < 0) return this.settled();
    return new Promise<T | undefined>((resolve, reject) => {
      const listener: Listener<T> = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      // setTimeout is driven by libuv's monotonic clock, so wall-clock jumps do not shorten it;
      // libuv may fire up to 1 ms early, so the deadline is re-checked with performance.now().
      const deadline = performance.now() + timeoutMs;
      const onTimeout = (): void => {
        const left = deadline - performance.now();
        if (left > 0) {
          timer = setTimeout(onTimeout, Math.ceil(left));
          return;
        }
        const ls = this.listeners;
        if (ls !== undefined) {
          const i = ls.indexOf(listener);
          if (i >= 0) ls.splice(i, 1);
        }
        this.waiting--;
        if (this.waiting === 0 && this.state === PENDING) this.onAbandon?.();
        resolve(undefined);
      };
      let timer = setTimeout(onTimeout, timeoutMs);
      (this.listeners ??= []).push(listener);
      this.waiting++;
      this.onWait?.();
    });
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.settled().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.settled().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.settled().finally(onfinally);
  }
}

/** A promise that resolves after `ms` milliseconds, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
