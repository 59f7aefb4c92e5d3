/**
 * Durations above the longest timer Node takes (2^31 − 1 ms, ~24.8 days) would be shortened to 1 ms
 * (TimeoutOverflowWarning, busy loops, immediate timeouts): every user-settable one is refused, naming the option
 * and the limit. The forward daemon's durations: test/forward; the fifo's linger_ms: test/fifo/fifo-options.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTopic, logLines, runCtl, tempDir, withFiles } from '../helpers/cli.js';

const T = { timeout: 60_000 };

describe('durations above 2147483647 ms', { concurrency: 3 }, () => {
  test('files driver poll_interval_ms: [error] Error: Invalid poll_interval_ms: … (at most 2147483647 ms), exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await runCtl(['topic', 'list', '--driver', 'files', '--driver.root_path', dir, '--driver.poll_interval_ms', '3000000000'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(logLines(r.stderr), ['[error] Error: Invalid poll_interval_ms: 3000000000 (at most 2147483647 ms)']);
    } finally {
      cleanup();
    }
  });

  test('bench consume / bench produce --timeout 3000000 (s): PARSE ERROR naming --timeout and the limit, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(dir, 't');
      for (const action of ['consume', 'produce']) {
        const r = await runCtl(['bench', action, '-d', 'files', '--driver.root_path', dir, '-t', 't', '-n', '1', '--timeout', '3000000'], { cwd: dir });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(
          r.stderr.split('\n')[0],
          "PARSE ERROR: option '--timeout <seconds>' argument '3000000' is invalid. Expected at most 2147483.647 seconds (2147483647 ms).",
        );
        assert.equal(r.stdout, '');
      }
    } finally {
      cleanup();
    }
  });

  test('the API: a producer lingerMs / consumer ackIntervalMs above the limit is an invalid argument', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(dir, 't');
      await withFiles(dir, async (d) => {
        const t = await d.openTopic('t');
        await assert.rejects(t.producer({ lingerMs: 3_000_000_000 }), { message: 'Invalid lingerMs: 3000000000 (milliseconds from 0 to 2147483647)' });
        await assert.rejects(t.consumer('c', { ackIntervalMs: 2 ** 31 }), { message: 'Invalid ackIntervalMs: 2147483648 (milliseconds from 0 to 2147483647)' });
        await t.close();
      });
    } finally {
      cleanup();
    }
  });
});
