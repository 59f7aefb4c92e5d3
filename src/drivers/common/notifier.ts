/**
 * Edge-triggered wake-ups without polling: a reader arms the notifier *before* checking for
 * data, then awaits the armed promise; a writer's notify() resolves every armed promise. Arming
 * first closes the race where data arrives between the check and the wait.
 */
export class Notifier {
  private waiters: (() => void)[] = [];

  arm(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const ws = this.waiters;
    if (ws.length === 0) return;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Resolves when any armed promise resolves or `signal` aborts. */
  static any(armed: Promise<void>[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const onAbort = (): void => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
      void Promise.race(armed).then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}
