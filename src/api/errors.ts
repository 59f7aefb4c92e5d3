/**
 * Errors of the library. Every error the library raises is a {@link DiasporaError}; each carries a
 * stable machine-readable `code` (callers match on it, never on message text), while the message
 * texts themselves follow the reference implementation (api.md §1) because users grep for them.
 */

export const ErrorCodes = {
  /** Generic library error (the reference's `diaspora::Exception`). */
  GENERIC: 'DIASPORA_ERROR',
  /** A validator rejected an event's metadata. */
  INVALID_METADATA: 'DIASPORA_INVALID_METADATA',
  /** JSON text could not be parsed or a value could not be serialised. */
  JSON: 'DIASPORA_JSON',
  /** Invalid argument or option given by the caller. */
  INVALID_ARGUMENT: 'DIASPORA_INVALID_ARGUMENT',
  /** A configuration (driver, topic, component, CLI) is invalid. */
  CONFIG: 'DIASPORA_CONFIG',
  /** A factory / plugin lookup failed. */
  FACTORY: 'DIASPORA_FACTORY',
  /** The topic does not exist. */
  TOPIC_NOT_FOUND: 'DIASPORA_TOPIC_NOT_FOUND',
  /** The topic already exists. */
  TOPIC_EXISTS: 'DIASPORA_TOPIC_EXISTS',
  /** The topic name is not acceptable to the driver. */
  INVALID_TOPIC_NAME: 'DIASPORA_INVALID_TOPIC_NAME',
  /** The producer, consumer, topic or driver was closed. */
  CLOSED: 'DIASPORA_CLOSED',
  /** An I/O operation failed. */
  IO: 'DIASPORA_IO',
  /**
   * Written events could not be made durable (an fsync failed). What was written since the last durable point may be
   * lost even if a later fsync succeeds (the kernel may drop the pages it failed to write back), so a producer that
   * saw it fails every later flush.
   */
  SYNC_FAILED: 'DIASPORA_SYNC_FAILED',
  /** Stored data is inconsistent (torn or corrupted files, malformed records). */
  CORRUPTED: 'DIASPORA_CORRUPTED',
  /** Data selection / view / scatter failure. */
  DATA: 'DIASPORA_DATA',
  /** A Kafka client or broker error. */
  KAFKA: 'DIASPORA_KAFKA',
  /** A timeout expired. */
  TIMEOUT: 'DIASPORA_TIMEOUT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface DiasporaErrorOptions {
  code?: ErrorCode;
  cause?: unknown;
}

/** Every error raised by the library. */
export class DiasporaError extends Error {
  readonly code: ErrorCode;

  constructor(message: string, options: DiasporaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DiasporaError';
    this.code = options.code ?? ErrorCodes.GENERIC;
  }
}

/** Raised (or used to reject a push) when a validator refuses an event's metadata. */
export class InvalidMetadata extends DiasporaError {
  constructor(message: string, options: Omit<DiasporaErrorOptions, 'code'> = {}) {
    super(message, { ...options, code: ErrorCodes.INVALID_METADATA });
    this.name = 'InvalidMetadata';
  }
}

/**
 * Thrown by an event processor to end `Consumer.process()` normally. It is a control signal,
 * not an error, so it deliberately does not extend `Error`.
 */
export class StopEventProcessor {
  readonly reason: string | undefined;
  constructor(reason?: string) {
    this.reason = reason;
  }
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
