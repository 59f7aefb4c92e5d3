/** Runs `fn`, lets the event loop turn a few times (15 ms), and returns the unhandled rejections seen meanwhile. */
export async function unhandledRejectionsDuring(fn: () => void | Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  try {
    await fn();
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setTimeout(resolve, 5));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return seen;
}
