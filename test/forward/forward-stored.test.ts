/**
 * `diaspora-ctl forward`'s fast path (events copied as stored, forwarding.md §3): cases that the general path handles
 * and the stored path must handle alike. Each test checks, from the debug log, that the policy took the fast path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtlProcess, countEvents, createTopic, logLines, produce, readAll, runCtl, tempDir, waitFor } from '../helpers/cli.js';

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

/** Writes `config` with the files driver `local` (root `root`) and these policies (flow mappings), one per line. */
function writePolicies(config: string, root: string, policies: string[]): void {
  const lines = ['drivers:', '  local:', '    type: files', `    options: { root_path: ${JSON.stringify(root)} }`, 'forward:'];
  writeFileSync(config, [...lines, ...policies.map((p) => `  - ${p}`), ''].join('\n'));
}

/**
 * Creates the topics (1 partition each), a pass-through filter `./pass.mjs` and these policies, puts 10 events in
 * `src`, starts the daemon and waits until the topics `watched` hold them, copied on the fast path.
 */
async function startForwarding(s: { dir: string; root: string; config: string }, topics: string[], policies: string[], watched: string[]): Promise<CtlProcess> {
  for (const t of topics) await createTopic(s.root, t, { num_partitions: 1 });
  writeFileSync(join(s.dir, 'pass.mjs'), "export default () => ({ id: 'pass', allow: () => true })\n");
  writePolicies(s.config, s.root, policies);
  await produce(s.root, 'src', Array.from({ length: 10 }, (_, i) => ({ metadata: { i } })));
  const d = new CtlProcess(['forward', '--config', s.config, '--logging', 'debug'], s.dir);
  await d.waitForLog('[info] Forwarding daemon running. Press Ctrl+C to stop.');
  const all = async (n: number): Promise<boolean> => (await Promise.all(watched.map((t) => countEvents(s.root, t)))).every((c) => c === n);
  assert.ok(await waitFor(() => all(10), 15_000, 20), d.stderr);
  assert.ok(d.logLines.includes(FAST), d.stderr);
  return d;
}

/** Waits until the policies local/src -> local/<to> have halted, each with an error that includes `because`. */
async function waitHalted(d: CtlProcess, tos: string[], because: string, failure: string): Promise<void> {
  const halted = (to: string): boolean => d.logLines.some((l) => l.startsWith(`[error] Forward worker halted: local/src -> local/${to}: `) && l.includes(because));
  assert.ok(await waitFor(() => tos.every(halted), 10_000, 20), `${failure}\n${d.stderr}`);
}

/** The policy into `other` goes on (it holds `n` events), the daemon still runs, and SIGTERM stops it with exit 0. */
async function otherGoesOn(d: CtlProcess, root: string, n: number): Promise<void> {
  assert.ok(await waitFor(async () => (await countEvents(root, 'other')) === n, 10_000, 20), d.stderr);
  assert.ok(d.running, d.stderr);
  const { code } = await d.stop(10_000);
  assert.equal(code, 0, d.stderr);
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

  test('a destination topic deleted at runtime halts its policy (fast path and general path); the other policies go on (forwarding.md §13 #17)', T, async () => {
    const s = setup([]);
    let d: CtlProcess | undefined;
    try {
      d = await startForwarding(
        s,
        ['src', 'dst', 'viafilter', 'other'],
        [
          '{ from: local/src, to: local/dst, retry: { min: 10ms, max: 50ms } }',
          '{ from: local/src, to: local/viafilter, retry: { min: 10ms, max: 50ms }, filters: [ { module: ./pass.mjs } ] }',
          '{ from: local/src, to: local/other }',
        ],
        ['dst', 'viafilter', 'other'],
      );
      rmSync(join(s.root, 'dst'), { recursive: true, force: true });
      rmSync(join(s.root, 'viafilter'), { recursive: true, force: true });
      await produce(s.root, 'src', Array.from({ length: 10 }, (_, i) => ({ metadata: { i: 10 + i } })));
      // it used to retry for ever (state `retrying`, and a --stop-at-end run never ended)
      await waitHalted(d, ['dst', 'viafilter'], 'the topic no longer exists', 'the policies whose destination was deleted did not halt');
      await otherGoesOn(d, s.root, 20);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('a source topic deleted by another process and re-created halts its policies (fast path and general path), nothing of the new topic forwarded; the other policies go on', T, async () => {
    const s = setup([]);
    let d: CtlProcess | undefined;
    try {
      d = await startForwarding(
        s,
        ['src', 'src2', 'dst', 'viafilter', 'other'],
        ['{ from: local/src, to: local/dst }', '{ from: local/src, to: local/viafilter, filters: [ { module: ./pass.mjs } ] }', '{ from: local/src2, to: local/other }'],
        ['dst', 'viafilter'],
      );
      // removed behind the daemon's back (not through its driver), then made again with other events
      rmSync(join(s.root, 'src'), { recursive: true, force: true });
      await createTopic(s.root, 'src', { num_partitions: 1 });
      await produce(s.root, 'src', Array.from({ length: 5 }, (_, i) => ({ metadata: { fresh: i } })));
      // they used to wait for ever on the removed files, in state `running`
      await waitHalted(d, ['dst', 'viafilter'], 'Topic src was deleted', 'the policies whose source was deleted did not halt');
      assert.deepEqual([await countEvents(s.root, 'dst'), await countEvents(s.root, 'viafilter')], [10, 10], 'nothing of the new topic forwarded');
      await produce(s.root, 'src2', [{ metadata: { other: 1 } }]);
      await otherGoesOn(d, s.root, 1);
    } finally {
      d?.kill();
      s.cleanup();
    }
  });

  test('a destination whose sync (fsync) fails: the policy halts without acknowledging, fast path and general path; a restart forwards everything', T, async () => {
    const s = setup([]);
    let d: CtlProcess | undefined;
    try {
      for (const t of ['src', 'dst', 'viafilter']) await createTopic(s.root, t, { num_partitions: 1 });
      writeFileSync(join(s.dir, 'pass.mjs'), "export default () => ({ id: 'pass', allow: () => true })\n");
      // the files driver whose writers' sync() fails every time (as fsync does with EIO)
      writeFileSync(
        join(s.dir, 'syncfail.mjs'),
        [
          'const wrap = (inner, name, fn) => new Proxy(inner, { get: (o, k) => (k === name ? fn(o) : typeof o[k] === "function" ? o[k].bind(o) : o[k]) });',
          'export function register(r) {',
          '  r.registerDriver("syncfail", async (options) =>',
          '    wrap(await r.drivers.get("files")(options), "openTopic", (d) => async (...a) => {',
          '      const topic = await d.openTopic(...a);',
          '      return topic && wrap(topic, "createWriter", (tp) => async (...b) =>',
          '        wrap(await tp.createWriter(...b), "sync", () => async () => { throw new Error("EIO: i/o error, fsync (injected)"); }));',
          '    }));',
          '}',
          '',
        ].join('\n'),
      );
      const config = (dstDriver: string): string =>
        [
          'drivers:',
          '  local:',
          '    type: files',
          `    options: { root_path: ${JSON.stringify(s.root)} }`,
          '  sf:',
          `    type: ${dstDriver}`,
          `    options: { root_path: ${JSON.stringify(s.root)} }`,
          'forward:',
          '  - { from: local/src, to: sf/dst, retry: { min: 10ms, max: 50ms } }',
          '  - { from: local/src, to: sf/viafilter, retry: { min: 10ms, max: 50ms }, filters: [ { module: ./pass.mjs } ] }',
          '',
        ].join('\n');
      writeFileSync(s.config, config('syncfail:./syncfail.mjs'));
      await produce(s.root, 'src', Array.from({ length: 20 }, (_, i) => ({ metadata: { i } })));
      d = new CtlProcess(['forward', '--config', s.config, '--logging', 'debug'], s.dir);
      const halted = (to: string): boolean =>
        d?.logLines.some((l) => l.startsWith(`[error] Forward worker halted: local/src -> sf/${to}: `) && l.includes('EIO: i/o error, fsync (injected)')) === true;
      // it used to acknowledge what the failed sync did not make durable (the flush error was ignored, or a retried
      // flush synced nothing and succeeded)
      assert.ok(await waitFor(() => halted('dst') && halted('viafilter'), 15_000, 20), `the policies did not halt\n${d.stderr}`);
      assert.ok(d.logLines.includes('[debug] Forward worker local/src -> sf/dst: events are copied as stored (no decoding)'), d.stderr);
      // every policy halted: the daemon ends, with exit 1
      const { code } = await d.exit(10_000);
      assert.equal(code, 1, d.stderr);
      // nothing was acknowledged: a restart with a working destination forwards all 20 again (the written copies stay,
      // as duplicates: at least once)
      writeFileSync(s.config, config('files'));
      const r = await runCtl(['forward', '--config', s.config, '--stop-at-end'], { cwd: s.dir, timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      for (const t of ['dst', 'viafilter']) {
        const got = (await readAll(s.root, t)).map((e) => (e.json as { i: number }).i);
        assert.deepEqual(got.slice(-20), Array.from({ length: 20 }, (_, i) => i), `${t}: ${got.join(',')}`);
      }
    } finally {
      d?.kill();
      s.cleanup();
    }
  });
});
