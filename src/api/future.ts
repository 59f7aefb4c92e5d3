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
  /** A value computed on first access (e.g. bigint ids nobody may ever read). */
  private lazyFn: ((a: unknown, b: number) => T) | undefined;
  private lazyA: unknown;
  private lazyB = 0;
  private listeners: Listener<T>[] | undefined;
  private waiting = 0;

  /**
   * Called when somebody starts waiting, before the state is checked, so a subclass may settle
   * the future synchronously (consumers claim events lazily this way).
   */
  protected claim(): void {}
  /** Called when the last waiter gave up (timed wait expired, or a poll found nothing). */
  protected abandon(): void {}

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

  /** Resolves with `fn(a, b)`, computed only when somebody reads the value. */
  resolveLazy<A>(fn: (a: A, b: number) => T, a: A, b: number): void {
    if (this.state !== PENDING) return;
    this.state = FULFILLED;
    this.lazyFn = fn as (a: unknown, b: number) => T;
    this.lazyA = a;
    this.lazyB = b;
    this.flush();
  }

  private value(): T {
    if (this.lazyFn !== undefined) {
      this.result = this.lazyFn(this.lazyA, this.lazyB);
      this.lazyFn = undefined;
      this.lazyA = undefined;
    }
    return this.result as T;
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

  /** The error when the future was rejected, else undefined (no promise needed to inspect it). */
  get failure(): { error: unknown } | undefined {
    return this.state === REJECTED ? { error: this.result } : undefined;
  }

  private flush(): void {
    const ls = this.listeners;
    if (ls === undefined) return;
    this.listeners = undefined;
    for (const l of ls) {
      if (this.state === FULFILLED) l.resolve(this.value());
      else l.reject(this.result);
    }
  }

  private settled(): Promise<T> {
    if (this.state === PENDING) this.claim();
    if (this.state === FULFILLED) return Promise.resolve(this.value());
    if (this.state === REJECTED) return Promise.reject(this.result);
    this.waiting++;
    return new Promise<T>((resolve, reject) => {
      (this.listeners ??= []).push({ resolve, reject });
    });
  }

  wait(timeoutMs = -1): Promise<T | undefined> {
    if (timeoutMs < 0) return this.settled();
    if (this.state === PENDING) this.claim();
    if (this.state === FULFILLED) return Promise.resolve(this.value());
    if (this.state === REJECTED) return Promise.reject(this.result);
    if (timeoutMs === 0) {
      if (this.waiting === 0) this.abandon();
      return Promise.resolve(undefined);
    }
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
        if (this.waiting === 0 && this.state === PENDING) this.abandon();
        resolve(undefined);
      };
      let timer = setTimeout(onTimeout, timeoutMs);
      (this.listeners ??= []).push(listener);
      this.waiting++;
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
