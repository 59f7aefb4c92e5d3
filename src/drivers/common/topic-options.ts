/** Validation shared by drivers: topic names and `num_partitions` (files-driver.md §2). */
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import type { JsonObject } from '../../api/json.js';

/**
 * Rejects names that are unsafe as a directory name: empty, `.`, `..`, containing `/`, `\` or
 * NUL, starting with `.`, or longer than 255 UTF-8 bytes.
 */
export function validateTopicName(name: string): void {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.startsWith('.') ||
    /[/\\\0]/.test(name) ||
    Buffer.byteLength(name, 'utf8') > 255
  ) {
    throw new DiasporaError(`Invalid topic name: ${name}`, { code: ErrorCodes.INVALID_TOPIC_NAME });
  }
}

/** `num_partitions`: an integer ≥ 1, default 1. */
export function parseNumPartitions(options: JsonObject): number {
  const v = options['num_partitions'];
  if (v === undefined) return 1;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new DiasporaError('Invalid value for "num_partitions" option', { code: ErrorCodes.CONFIG });
  }
  return n;
}
