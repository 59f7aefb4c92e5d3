declare module 'fs-native-extensions' {
  /** Takes a lock without waiting; false when another holder has it. */
  export function tryLock(fd: number, offset?: number, length?: number, opts?: { shared?: boolean }): boolean;
  /** Waits (in libuv's thread pool) for the lock. */
  export function waitForLock(fd: number, offset?: number, length?: number, opts?: { shared?: boolean }): Promise<void>;
  export function unlock(fd: number, offset?: number, length?: number): void;
}
