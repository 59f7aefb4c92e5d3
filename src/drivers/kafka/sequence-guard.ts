/**
 * Keeps the record batches of an idempotent producer in sequence order per partition when some of
 * them fail, with several Produce requests in flight.
 *
 * The broker checks sequences only once it knows the producer on a partition: the first batch of
 * a new producer id is accepted whatever its base sequence (Kafka's ProducerStateManager, since
 * KIP-360). So if batch 1 of a new partition is not appended (no leader yet, a lost connection,
 * NOT_LEADER_OR_FOLLOWER on a topic that was just created) while batch 2 is, batch 2 is stored
 * first and the retry of batch 1 is refused for good with OUT_OF_ORDER_SEQUENCE_NUMBER. Hence two
 * rules, per partition:
 *
 * 1. Until one batch of this producer is acknowledged, a batch is sent only when the one before
 *    it has its answer (`ready`): one batch at a time, once per partition and producer id.
 * 2. A batch is never sent while an earlier batch of its partition waits for a retry (`admit`);
 *    it waits with it, and the retries go out in order. Once acknowledged, the broker refuses a gap
 *    itself (OUT_OF_ORDER_SEQUENCE_NUMBER, which the producer retries), so batches are pipelined.
 */

interface Lane {
  /** Ordinal of the partition's next batch (call order; unlike the sequence, it does not wrap). */
  next: number;
  /** The broker acknowledged a batch of this producer id on this partition. */
  confirmed: boolean;
  /** Ordinals of batches that were not appended and wait for a retry. */
  readonly waiting: Set<number>;
  /** While not confirmed: the answer to the batch in flight. */
  answer: Promise<void> | undefined;
  settle: (() => void) | undefined;
  /** The producer gave up a batch of this partition: nothing later may be appended. */
  dead: { err: unknown } | undefined;
}

export class SequenceGuard {
  private readonly lanes = new Map<string, Lane>();

  private lane(key: string): Lane {
    let l = this.lanes.get(key);
    if (l === undefined) this.lanes.set(key, (l = { next: 0, confirmed: false, waiting: new Set(), answer: undefined, settle: undefined, dead: undefined }));
    return l;
  }

  /** The ordinal of a partition's next batch, in the order batches are encoded. */
  nextOrdinal(key: string): number {
    return this.lane(key).next++;
  }

  /** Resolves once no batch of these partitions is in flight without an acknowledgement before it (rule 1). */
  async ready(keys: Iterable<string>): Promise<void> {
    for (const key of keys) {
      const l = this.lane(key);
      while (!l.confirmed && l.answer !== undefined) await l.answer;
    }
  }

  /**
   * Whether a batch may be sent now (rule 2). If not, it counts as waiting for a retry, and so do
   * the batches after it. A partition given up answers with the error that ended it.
   */
  admit(key: string, ordinal: number): { send: true } | { send: false; dead?: unknown } {
    const l = this.lane(key);
    if (l.dead !== undefined) return { send: false, dead: l.dead.err };
    for (const w of l.waiting) {
      if (w < ordinal) {
        l.waiting.add(ordinal);
        return { send: false };
      }
    }
    l.waiting.delete(ordinal);
    return { send: true };
  }

  /** The batch is written to a connection; until the partition is confirmed, the next waits for its answer. */
  sent(key: string): void {
    const l = this.lane(key);
    if (l.confirmed) return;
    l.answer = new Promise((resolve) => (l.settle = resolve));
  }

  /** The batch was appended (or the broker already had it). */
  appended(key: string): void {
    const l = this.lane(key);
    l.confirmed = true;
    this.answered(l);
  }

  /** The batch was not appended (not sent, or refused): it waits for a retry. */
  failed(key: string, ordinal: number): void {
    const l = this.lane(key);
    l.waiting.add(ordinal);
    this.answered(l);
  }

  /** The producer gives up a batch: the later batches of its partition must fail too. */
  giveUp(key: string, err: unknown): void {
    this.lane(key).dead ??= { err };
  }

  private answered(l: Lane): void {
    const settle = l.settle;
    l.answer = l.settle = undefined;
    settle?.();
  }
}
