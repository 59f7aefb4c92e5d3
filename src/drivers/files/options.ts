/** Driver options of the `files` driver (files-driver.md §1). */
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { isJsonObject, type Json } from '../../api/json.js';
import { log } from '../../api/logging.js';
import { MAX_TIMER_MS } from '../../api/timers.js';

export type FlushBehavior = 'immediate' | 'on_flush' | 'buffered';

export interface FilesOptions {
  rootPath: string;
  useFileLocking: boolean;
  flushBehavior: FlushBehavior;
  pollIntervalMs: number;
  consumerState: boolean;
}

const KNOWN = new Set(['root_path', 'use_file_locking', 'flush_behavior', 'poll_interval_ms', 'consumer_state']);

function typeError(detail: string): DiasporaError {
  return new DiasporaError(`Invalid type in PfsConfig metadata: ${detail}`, { code: ErrorCodes.CONFIG });
}

export function parseFilesOptions(o: Json): FilesOptions {
  if (!isJsonObject(o)) throw typeError('driver options must be a JSON object');
  const root = o['root_path'] ?? './diaspora_data';
  if (typeof root !== 'string') throw typeError('"root_path" should be a string');
  const locking = o['use_file_locking'] ?? true;
  if (typeof locking !== 'boolean') throw typeError('"use_file_locking" should be a boolean');
  const flush = o['flush_behavior'] ?? 'buffered';
  if (typeof flush !== 'string') throw typeError('"flush_behavior" should be a string');
  if (flush !== 'immediate' && flush !== 'on_flush' && flush !== 'buffered') {
    throw new DiasporaError(`Invalid flush_behavior: ${flush}. Valid values are: immediate, on_flush, buffered`, { code: ErrorCodes.CONFIG });
  }
  const poll = o['poll_interval_ms'] ?? 50;
  const pollN = typeof poll === 'bigint' ? Number(poll) : poll;
  if (typeof pollN !== 'number' || !Number.isInteger(pollN) || pollN < 1) throw typeError('"poll_interval_ms" should be an integer >= 1');
  if (pollN > MAX_TIMER_MS) {
    throw new DiasporaError(`Invalid poll_interval_ms: ${pollN} (at most ${MAX_TIMER_MS} ms)`, { code: ErrorCodes.CONFIG });
  }
  const state = o['consumer_state'] ?? true;
  if (typeof state !== 'boolean') throw typeError('"consumer_state" should be a boolean');
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) log.debug(`files driver: ignoring unknown option "${k}"`);
  return { rootPath: root, useFileLocking: locking, flushBehavior: flush, pollIntervalMs: pollN, consumerState: state };
}
