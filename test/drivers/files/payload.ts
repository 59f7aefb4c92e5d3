/**
 * Deterministic event contents shared by the multi-process tests and their child producers:
 * metadata `{proc, seq}`, data bytes and headers derived from (proc, seq), so a reader can check
 * every event it gets without talking to the writer.
 */

/** Data size of event (proc, seq): 0 for some events, up to ~4 KiB for others. */
export function dataSize(proc: number, seq: number): number {
  const k = (proc * 7919 + seq * 104729) % 23;
  if (k === 0) return 0;
  if (k < 4) return 1 + ((seq * 31 + proc) % 7);
  if (k === 22) return 3000 + ((seq * 13) % 1100);
  return (proc * 131 + seq * 17) % 400;
}

export function eventData(proc: number, seq: number): Buffer {
  const n = dataSize(proc, seq);
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (proc * 31 + seq * 17 + i * 7) & 0xff;
  return b;
}

/** Headers are attached to every `every`-th event (seq % every === 0); undefined otherwise. */
export function eventHeaders(proc: number, seq: number, every: number): Record<string, string> | undefined {
  if (every <= 0 || seq % every !== 0) return undefined;
  return { proc: String(proc), seq: String(seq), note: `p${proc}/s${seq}` };
}

export interface ProducerConfig {
  root: string;
  topic: string;
  proc: number;
  /** First seq number written. */
  start: number;
  count: number;
  /** 'multi': free-running pushes awaited now and then; 'batches': explicit batches of `batch`
   *  events, each flushed (prints `batch <k>`); 'follow': one awaited push at a time after an
   *  irregular pause, printing `t <seq> <epoch ms>` when the push future resolved. */
  mode: 'multi' | 'batches' | 'follow';
  batch?: number;
  locking?: boolean;
  headersEvery?: number;
  /** Print `ready` and wait for a line on stdin before pushing (start barrier). */
  barrier?: boolean;
  /** follow mode: pause before each push, uniformly in [min, max] ms. */
  pauseMs?: [number, number];
  flushBehavior?: 'immediate' | 'on_flush' | 'buffered';
}
