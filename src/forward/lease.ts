/**
 * The lease of a policy in `no_duplicates` mode (forwarding.md §5): an exclusive lock held for the
 * policy's lifetime, so that two daemons never forward the same policy at once (each would resume
 * from the same positions and write the same events). An open-file-description lock: released by
 * the kernel when the process dies, so a crash never leaves a stale lease behind.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import * as fsx from 'fs-native-extensions';
import { DiasporaError, ErrorCodes } from '../api/errors.js';

export interface Lease {
  release(): void;
}

/** Takes the lock on `path` (created if needed) or fails at once naming the policy and the lock. */
export function acquireLease(policy: string, path: string): Lease {
  fs.mkdirSync(dirname(path), { recursive: true });
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  if (!fsx.tryLock(fd)) {
    fs.closeSync(fd);
    throw new DiasporaError(`Policy ${policy} is already running (lock ${path})`, { code: ErrorCodes.CONFIG });
  }
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      fsx.unlock(fd);
      fs.closeSync(fd);
    },
  };
}
