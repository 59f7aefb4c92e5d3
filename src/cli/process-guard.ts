/**
 * A daemon's last line of defence (forward, fifo): an exception nobody caught or a rejection nobody handled —
 * typically in a plugin — is logged with its stack and starts the daemon's normal, bounded shutdown (flush,
 * positions, FIFOs removed) instead of ending the process on the spot with nothing flushed. The daemon then exits
 * with code 1. Returns the function that removes the listeners.
 */
export function onFatalError(log: (message: string) => void, shutdown: () => void): () => void {
  const handler = (err: unknown): void => {
    log(`Uncaught error, shutting down: ${err instanceof Error && err.stack !== undefined ? err.stack : String(err)}`);
    shutdown();
  };
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
  return () => {
    process.off('uncaughtException', handler);
    process.off('unhandledRejection', handler);
  };
}
