/**
 * `diaspora-ctl forward`'s fast path (events copied as stored, forwarding.md §3): cases that the general path handles
 * and the stored path must handle alike. Each test checks, from the debug log, that the policy took the fast path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTopic, logLines, produce, readAll, runCtl, tempDir } from '../helpers/cli.js';

const T = { timeout: 60_000 };
const FAST = '[debug] Forward worker local/src -> local/dst: events are copied as stored (no decoding)';

/** A temporary directory with a files root `data/` and `fwd.yaml` holding one policy local/src -> local/dst plus `policyExtra`. */
function setup(policyExtra: string[]): { dir: string; root: string; config: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir('diaspora-forward-stored-');
  const root = join(dir, 'data');
  const config = join(dir, 'fwd.yaml');
  const lines = ['drivers:', '  local:', '    type: files', `    options: { root_path: ${JSON.stringify(root)} }`, 'forward:', '  - from: local/src', '    to: local/dst'];
  writeFileSync(config, [...lines, ...policyExtra.map((l) => '    ' + l), ''].join('\n'));
  return { dir, root, config, cleanup };
}

/** The source partition of each destination event, in destination order (from `diaspora-src`). */
function sourcePartitions(events: { headers: Record<string, string> }[]): number[] {
  return events.map((e) => Number(/#(\d+)@\d+$/.exec(e.headers['diaspora-src'] ?? '')?.[1]));
}

describe('forward: events copied as stored (fast path)', () => {
  test('reads smaller than the partition count serve every partition in turn: none is starved while another has events', T, async () => {
    // batch_size 1, max_in_flight 1: each stored read takes one event. Every read used to start at partition 0, so
    // partition 1 got nothing while partition 0 had events (under a steady stream on partition 0: never)
    const s = setup(['partitions: fixed:0', 'batch_size: 1', 'max_in_flight: 1']);
    try {
      await createTopic(s.root, 'src', { num_partitions: 2 });
      await createTopic(s.root, 'dst', { num_partitions: 1 });
      await produce(s.root, 'src', Array.from({ length: 400 }, (_, i) => ({ metadata: { i }, partition: i < 300 ? 0 : 1 })));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end', '--logging', 'debug'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes(FAST), r.stderr);
      const order = sourcePartitions(await readAll(s.root, 'dst'));
      assert.equal(order.length, 400);
      // while both partitions have events, they alternate (as through the general path)
      assert.deepEqual(order.slice(0, 200), Array.from({ length: 200 }, (_, k) => k % 2), `destination order by source partition: ${order.join('')}`);
    } finally {
      s.cleanup();
    }
  });
});
