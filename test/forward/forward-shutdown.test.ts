/**
 * `diaspora-ctl forward` shutdown deadline (forwarding.md §10, diaspora-ctl.md §8.2): a destination whose writes never
 * complete must not keep the daemon alive past `shutdown_timeout`. On SIGTERM it waits up to the deadline, logs
 * `Shutdown deadline exceeded; <n> events will be forwarded again after restart`, exits 0 within a bounded time, and
 * the source positions it leaves do not cover the unconfirmed events: a restart with a working destination forwards
 * every source event (no loss).
 *
 * The destination is a driver plugin (`stuck:./stuck.mjs`, api.md §5.1) wrapping the files driver: its first
 * STUCK_AFTER appends go through, every later append never resolves (and writes nothing). Without STUCK_AFTER in the
 * environment it is the plain files driver, so the restart uses the same configuration, policy and consumer name.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtlProcess, committedPositions, countEvents, createTopic, logLines, produce, readAll, runCtl, tempDir, waitFor, type NewEvent } from '../helpers/cli.js';

const RUNNING = '[info] Forwarding daemon running. Press Ctrl+C to stop.';
const DEADLINE = /^\[warning\] Shutdown deadline exceeded; (\d+) events will be forwarded again after restart$/;
const POLICY = 'local/src->stuck/dst';

const STUCK_PLUGIN = `const AFTER = process.env.STUCK_AFTER === undefined ? Infinity : Number(process.env.STUCK_AFTER);
let appends = 0;
const wrap = (inner, name, fn) => new Proxy(inner, { get: (o, k) => (k === name ? fn(o) : typeof o[k] === 'function' ? o[k].bind(o) : o[k]) });
export function register(r) {
  r.registerDriver('stuck', async (options) =>
    wrap(await r.drivers.get('files')(options), 'openTopic', (d) => async (...a) => {
      const topic = await d.openTopic(...a);
      return topic && wrap(topic, 'createWriter', (tp) => async (...b) =>
        wrap(await tp.createWriter(...b), 'append', (w) => async (partition, batch) => {
          const n = ++appends;
          if (n > AFTER) {
            process.stderr.write('STUCK: append ' + n + ' never completes\\n');
            return new Promise(() => undefined);
          }
          return w.append(partition, batch);
        }));
    }));
}
`;

function events(n: number): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ({ metadata: { n: i }, data: Buffer.from(`payload-${i}`), partition: 0 }));
}

const CASES: { name: string; afterPushTimeout: boolean }[] = [
  { name: 'SIGTERM while the write hangs', afterPushTimeout: false },
  // a write pending > 5 s logs `Push timed out` once and keeps waiting (diaspora-ctl.md §8.2): the daemon must still be
  // alive and honour the deadline once that warning's timer is gone (it used to exit 0 by itself there: nothing else
  // held the event loop while the destination waited without a handle of its own)
  { name: 'SIGTERM after the `Push timed out` warning', afterPushTimeout: true },
];

describe('forward: shutdown deadline with a destination that never confirms', { concurrency: 2 }, () => {
  for (const c of CASES) test(`${c.name}, shutdown_timeout 1s: deadline warning, exit 0 within 8 s, unconfirmed events forwarded again on restart`, { timeout: 90_000 }, async (t) => {
    const { dir, cleanup } = tempDir('diaspora-forward-shutdown-');
    const root = join(dir, 'data');
    let d: CtlProcess | undefined;
    try {
      await createTopic(root, 'src', { num_partitions: 1 });
      await createTopic(root, 'dst', { num_partitions: 1 });
      writeFileSync(join(dir, 'stuck.mjs'), STUCK_PLUGIN);
      const config = join(dir, 'fwd.yaml');
      writeFileSync(
        config,
        [
          'shutdown_timeout: 1s',
          'drivers:',
          '  local:',
          '    type: files',
          `    options: { root_path: ${JSON.stringify(root)} }`,
          '  stuck:',
          '    type: stuck:./stuck.mjs',
          `    options: { root_path: ${JSON.stringify(root)} }`,
          'forward:',
          '  - from: local/src',
          '    to: stuck/dst',
          '    batch_size: 10',
          '    batch_linger: 5ms',
          '    max_in_flight: 1',
          '    checkpoint: { interval: 50ms }',
          '',
        ].join('\n'),
      );
      const N = 100;
      await produce(root, 'src', events(N));

      // first run: the first append (10 events) is confirmed, the second never completes
      d = new CtlProcess(['forward', '--config', config], dir, { STUCK_AFTER: '1' });
      await d.waitForLog(RUNNING);
      assert.ok(await waitFor(() => d?.stderr.includes('STUCK: append 2 never completes') === true, 15_000), `the second append was not reached\n${d.stderr}`);
      assert.equal(await countEvents(root, 'dst'), 10, 'the first batch is in the destination');
      // let the checkpoint of the confirmed batch happen (interval 50 ms), so the check below is not vacuous
      await waitFor(async () => (await committedPositions(root, 'src', POLICY)).get(0) === 10n, 3_000, 50);
      if (c.afterPushTimeout) {
        await d.waitForLog('[warning] Push timed out for local/src -> stuck/dst', 15_000);
        await new Promise((r) => setTimeout(r, 500));
        assert.ok(d.running, `the daemon must keep running (and waiting) after the push timeout\n${d.stderr}`);
      }

      const { code, signal, elapsedMs } = await d.stop(15_000);
      const lines = d.logLines;
      t.diagnostic(`exit after SIGTERM in ${elapsedMs} ms; ${lines.filter((l) => DEADLINE.test(l)).join(' | ')}`);
      assert.equal(signal, null, d.stderr);
      assert.equal(code, 0, `exit 0 past the deadline (diaspora-ctl.md §8.2)\n${d.stderr}`);
      assert.ok(elapsedMs < 8_000, `exited ${elapsedMs} ms after SIGTERM (deadline 1 s)\n${d.stderr}`);
      assert.ok(elapsedMs >= 900, `exited ${elapsedMs} ms after SIGTERM: before the 1 s deadline could pass\n${d.stderr}`);
      assert.ok(lines.includes('[info] Received shutdown signal...'), d.stderr);
      const warning = lines.filter((l) => DEADLINE.test(l));
      assert.equal(warning.length, 1, `one deadline warning\n${d.stderr}`);
      const n = Number(DEADLINE.exec(warning[0] as string)?.[1]);
      assert.ok(n >= 10 && n <= N - 10, `unconfirmed count ${n}: at least the stuck batch, at most what was not confirmed\n${d.stderr}`);

      // the persisted source position does not cover unconfirmed events (nothing beyond the destination's 10)
      const committed = (await committedPositions(root, 'src', POLICY)).get(0) ?? 0n;
      t.diagnostic(`committed source position after the stop: ${committed}`);
      assert.ok(committed <= 10n, `committed position ${committed} covers events the destination never confirmed`);
      assert.equal(await countEvents(root, 'dst'), 10, 'the stuck appends wrote nothing');

      // restart with a working destination (same config, no STUCK_AFTER): every source event reaches dst
      const r = await runCtl(['forward', '--config', config, '--stop-at-end'], { cwd: dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!r.stderr.includes('STUCK:'), r.stderr);
      const got = (await readAll(root, 'dst')).map((e) => (e.json as { n: number }).n);
      const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !got.includes(i));
      assert.deepEqual(missing, [], `events lost across the deadline-exceeded shutdown\n${logLines(r.stderr).join('\n')}`);
      // the confirmed batch was checkpointed: nothing is forwarded twice
      if (committed === 10n) assert.equal(got.length, N, `duplicates: ${got.length - N}`);
    } finally {
      d?.kill();
      cleanup();
    }
  });
});
