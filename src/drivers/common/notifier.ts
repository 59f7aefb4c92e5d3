/**
 * Edge-triggered wake-ups without polling. A reader subscribes *before* checking for data, then
 * waits; a writer's notify() wakes every subscriber. Subscribing first closes the race where data
 * arrives between the check and the wait. Every subscription, timer and abort listener is removed
 * when the wait ends, so idle readers accumulate nothing.
 */
export class Notifier {
  private readonly listeners = new Set<() => void>();

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(): void {
    if (this.listeners.size === 0) return;
    const ls = [...this.listeners];
    this.listeners.clear();
    for (const l of ls) l();
  }

  /** Number of subscribers (tests). */
  get size(): number {
    return this.listeners.size;
  }
}

/** A wake-up armed on several notifiers; resolve with `wait`, or `cancel` when not needed. */
export class Wakeup {
  private readonly unsubscribe: (() => void)[];
  private fired = false;
  private resolve: (() => void) | undefined;

  constructor(notifiers: readonly Notifier[]) {
    const fire = (): void => {
      this.fired = true;
      this.resolve?.();
    };
    this.unsubscribe = notifiers.map((n) => n.subscribe(fire));
  }

  /** Resolves when a notifier fires, after `timeoutMs`, or when `signal` aborts; then cleans up. */
  wait(signal: AbortSignal, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.cancel();
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.resolve = done;
      if (this.fired || signal.aborted) done();
    });
  }

  cancel(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe.length = 0;
  }
}
