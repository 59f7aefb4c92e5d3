/**
 * Client-neutral Kafka errors: the adapter turns the client library's error trees into a
 * {@link KafkaClientError} (one readable message, a kind, the broker error names), and the driver
 * turns those into `Kafka error: <message>` DiasporaErrors. Fakes raise KafkaClientErrors too.
 */
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';

export type KafkaErrorKind = 'auth' | 'network' | 'timeout' | 'protocol' | 'unsupported' | 'user' | 'other';

export class KafkaClientError extends Error {
  constructor(
    message: string,
    readonly kind: KafkaErrorKind,
    /** Broker error names found in the error (e.g. `TOPIC_ALREADY_EXISTS`). */
    readonly apiIds: readonly string[] = [],
    readonly retriable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KafkaClientError';
  }

  has(apiId: string): boolean {
    return this.apiIds.includes(apiId);
  }
}

/** The cluster does not know the topic (the library's `Unknown topic …` error, or the broker's error codes). */
export function isUnknownTopic(err: unknown): boolean {
  return err instanceof KafkaClientError && (/Unknown topic/i.test(err.message) || err.has('UNKNOWN_TOPIC_OR_PARTITION') || err.has('UNKNOWN_TOPIC_ID'));
}

/** `Kafka error: <message>` as a DiasporaError (kafka-octopus.md §6, §7). */
export function kafkaError(err: unknown, context?: string): DiasporaError {
  if (err instanceof DiasporaError) return err;
  const msg = errorMessage(err);
  return new DiasporaError(`Kafka error: ${context === undefined ? msg : `${context}: ${msg}`}`, { code: ErrorCodes.KAFKA, cause: err });
}

/**
 * Runs `fn`, retrying errors the broker marks retriable (e.g. FENCED_LEADER_EPOCH or
 * NOT_LEADER_OR_FOLLOWER while leadership moves after a broker restart) with exponential backoff,
 * up to about `budgetMs`; any other error, or the last one, is thrown.
 */
export async function retryRetriable<T>(fn: () => Promise<T>, budgetMs = 10_000): Promise<T> {
  const deadline = performance.now() + budgetMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof KafkaClientError) || !err.retriable || performance.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
