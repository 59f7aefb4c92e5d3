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

/** `Kafka error: <message>` as a DiasporaError (kafka-octopus.md §6, §7). */
export function kafkaError(err: unknown, context?: string): DiasporaError {
  if (err instanceof DiasporaError) return err;
  const msg = errorMessage(err);
  return new DiasporaError(`Kafka error: ${context === undefined ? msg : `${context}: ${msg}`}`, { code: ErrorCodes.KAFKA, cause: err });
}
