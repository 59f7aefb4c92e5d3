/**
 * What was opened through one driver and is not closed yet. `Driver.close()` closes it all before
 * the driver releases its storage (file descriptors, connections): a producer or consumer left
 * open would otherwise go on with descriptors the driver closed (or that the process has reused
 * for another file), and a pending pull would never end.
 */
export interface Closeable {
  close(): Promise<void>;
}

export class OpenResources {
  readonly consumers = new Set<Closeable>();
  readonly producers = new Set<Closeable>();
  readonly topics = new Set<Closeable>();

  /**
   * Closes consumers first (pending pulls end at once, positions are saved), then producers
   * (each flushes what it accepted), then topic handles. Everything is closed even when
   * something fails; the first failure is thrown at the end.
   */
  async closeAll(): Promise<void> {
    let failure: { reason: unknown } | undefined;
    for (const set of [this.consumers, this.producers, this.topics]) {
      const outcomes = await Promise.allSettled([...set].map((c) => c.close()));
      set.clear();
      for (const o of outcomes) if (o.status === 'rejected') failure ??= { reason: o.reason };
    }
    if (failure !== undefined) throw failure.reason;
  }
}
